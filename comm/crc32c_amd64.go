//go:build amd64 && !noasm

package comm

import (
	"hash/crc32"

	"golang.org/x/sys/cpu"
)

// castagnoliFold is the AVX-512 carry-less-multiply CRC32C kernel
// (crc32c_amd64.s): not inverted, len(p) >= 256 and a multiple of 16.
//
//go:noescape
func castagnoliFold(crc uint32, p []byte) uint32

// foldOK: the CPU has the instructions castagnoliFold uses.
var foldOK = cpu.X86.HasAVX512F && cpu.X86.HasAVX512VPCLMULQDQ && cpu.X86.HasPCLMULQDQ && cpu.X86.HasSSE41

// foldMin is the shortest input given to castagnoliFold.
const foldMin = 512

// crcUpdate is crc32.Update with the Castagnoli table. hash/crc32 uses
// the SSE4.2 CRC32 instruction for Castagnoli (about 25 GB/s here), and
// computing the payload CRCs took a quarter of the CPU time of a large
// transfer on loopback; where the CPU has AVX-512 VPCLMULQDQ, long inputs
// go through castagnoliFold instead. Build with -tags noasm for the
// hash/crc32 path only.
func crcUpdate(crc uint32, b []byte) uint32 {
	if foldOK && len(b) >= foldMin {
		n := len(b) &^ 15
		crc = ^castagnoliFold(^crc, b[:n])
		b = b[n:]
	}
	return crc32.Update(crc, castagnoli, b)
}
