package study

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// ErrNoRun is Plot's error for a directory that holds neither a sweep nor
// a training run (errors.Is matches it).
var ErrNoRun = errors.New("not a run's or a sweep's directory")

// noRun is an ErrNoRun with its own message.
type noRun string

func (e noRun) Error() string        { return string(e) }
func (e noRun) Is(target error) bool { return target == ErrNoRun }

// Plot is `asyncmb plot`: it redraws the figures of the sweep (scale.csv)
// or training run (trace.csv, summary.json) in dir and says which on w.
func Plot(dir string, w io.Writer) error {
	if _, err := os.Stat(filepath.Join(dir, "scale.csv")); err == nil {
		res, err := ReadCSV(dir)
		if err != nil {
			return err
		}
		if err := res.Figures(dir); err != nil {
			return err
		}
		fmt.Fprintf(w, "figures of the sweep in %s\n", dir)
		return nil
	}
	if _, err := os.Stat(filepath.Join(dir, "trace.csv")); err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return noRun(dir + " has neither scale.csv (a sweep) nor trace.csv (a training run)")
		}
		return err
	}
	if err := DrawRunDir(dir); err != nil {
		return err
	}
	fmt.Fprintf(w, "figures of the run in %s\n", dir)
	return nil
}
