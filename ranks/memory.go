package ranks

import (
	"bufio"
	"bytes"
	"context"
	"os"
	"strconv"

	"github.com/asyncmb/asyncmb/comm"
	"golang.org/x/sys/unix"
)

// estMemory is the round in which every worker reports its peak resident
// set size: worker w puts it at res[w], the sum-Reduce gathers them.
const estMemory = 9

// peakRSS returns this process's peak resident set size in bytes: VmHWM
// from /proc/self/status, else getrusage's ru_maxrss (KiB on Linux); 0
// when neither is known.
func peakRSS() uint64 {
	if b, err := os.ReadFile("/proc/self/status"); err == nil {
		if kb, ok := statusKiB(b, "VmHWM:"); ok {
			return kb << 10
		}
	}
	var ru unix.Rusage
	if err := unix.Getrusage(unix.RUSAGE_SELF, &ru); err == nil && ru.Maxrss > 0 {
		return uint64(ru.Maxrss) << 10
	}
	return 0
}

// statusKiB returns the value of field ("VmHWM:") of a /proc/PID/status
// text, in kB as the kernel writes it.
func statusKiB(status []byte, field string) (uint64, bool) {
	sc := bufio.NewScanner(bytes.NewReader(status))
	for sc.Scan() {
		rest, ok := bytes.CutPrefix(sc.Bytes(), []byte(field))
		if !ok {
			continue
		}
		fs := bytes.Fields(rest)
		if len(fs) != 2 || string(fs[1]) != "kB" {
			return 0, false
		}
		v, err := strconv.ParseUint(string(fs[0]), 10, 64)
		return v, err == nil
	}
	return 0, false
}

// workerMemory is a worker's answer to an estMemory round: its peak RSS
// at its own rank's entry.
func workerMemory(c *comm.Comm) []float64 {
	res := make([]float64, c.Size())
	res[c.Rank()] = float64(peakRSS())
	return res
}

// gatherPeakRSS records the master's peak RSS in sum and, when the workers
// still serve rounds (live), each worker's (an estMemory round).
func gatherPeakRSS(ctx context.Context, c *comm.Comm, sum *Summary, live bool) error {
	sum.Master.PeakRSSBytes = peakRSS()
	if !live {
		return nil
	}
	res := make([]float64, c.Size())
	if err := round(ctx, c, estMemory, nil, res); err != nil {
		return err
	}
	for i := range sum.PerWorker {
		if w := sum.PerWorker[i].Rank; w > 0 && w < len(res) {
			sum.PerWorker[i].PeakRSSBytes = uint64(res[w])
		}
	}
	return nil
}
