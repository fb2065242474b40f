package data

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"
)

// GenerateFile is `asyncmb gen`: it writes the data set of cfg to the file
// out (through out.tmp, renamed when complete), or to stdout when out is "",
// and reports progress every 2 s and a summary at the end on stderr.
func GenerateFile(cfg GenConfig, out string, stdout, stderr io.Writer) error {
	w := stdout
	var f *os.File
	if out != "" {
		var err error
		f, err = os.Create(out + ".tmp")
		if err != nil {
			return err
		}
		defer func() {
			if f != nil { // not renamed: remove the partial output
				f.Close()
				os.Remove(f.Name())
			}
		}()
		w = f
	}
	start := time.Now()
	last := start
	st, err := Generate(w, cfg, func(st GenStats) {
		if now := time.Now(); now.Sub(last) >= 2*time.Second {
			last = now
			fmt.Fprintf(stderr, "gen: %d/%d rows (%.0f%%), %s, %.1fs\n", st.Rows, cfg.Rows,
				100*float64(st.Rows)/float64(cfg.Rows), HumanBytes(st.Bytes), now.Sub(start).Seconds())
		}
	})
	if err != nil {
		return err
	}
	dest := "standard output"
	if f != nil {
		if err := f.Close(); err != nil {
			return err
		}
		if err := os.Rename(f.Name(), out); err != nil {
			return err
		}
		f = nil
		dest = filepath.Clean(out)
	}
	fmt.Fprintf(stderr, "gen: wrote %d rows x %d features, %d nonzeros (density %.4g), %s to %s in %.1fs\n",
		st.Rows, cfg.Features, st.NNZ, float64(st.NNZ)/float64(st.Rows)/float64(cfg.Features),
		HumanBytes(st.Bytes), dest, time.Since(start).Seconds())
	return nil
}
