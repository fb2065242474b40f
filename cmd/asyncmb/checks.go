package main

import (
	"os"

	"github.com/urfave/cli/v2"
)

// checkBatchBound refuses, before any rank starts or allocates, a --batch
// that no shard of data can hold: a LIBSVM row takes at least 2 bytes
// ("1\n"), so the file has at most size/2 rows. The exact check, against
// each worker's shard, is done at setup (ranks.BatchError, exit code 2).
func checkBatchBound(data string, batch int) error {
	st, err := os.Stat(data)
	if err != nil || !st.Mode().IsRegular() {
		return nil // reported where the file is read
	}
	if rows := st.Size() / 2; int64(batch) > rows {
		return usagef("--batch %d: %s (%d bytes) has at most %d rows", batch, data, st.Size(), rows)
	}
	return nil
}

// joinFlag is the rank command's --join.
func joinFlag() cli.Flag {
	return &cli.BoolFlag{Name: "join", EnvVars: envs("join"),
		Usage: "join a running job in place of a worker that left it (died, was lost or stopped): same flags, rank and secret;" +
			" the worker reads its shard, gets the current x and contributes until the run ends"}
}
