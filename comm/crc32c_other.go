//go:build !amd64 || noasm

package comm

import "hash/crc32"

const foldOK = false

// crcUpdate is crc32.Update with the Castagnoli table.
func crcUpdate(crc uint32, b []byte) uint32 {
	return crc32.Update(crc, castagnoli, b)
}
