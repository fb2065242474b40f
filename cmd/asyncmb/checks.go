package main

import "github.com/urfave/cli/v2"

// joinFlag is the rank command's --join.
func joinFlag() cli.Flag {
	return &cli.BoolFlag{Name: "join", EnvVars: envs("join"),
		Usage: "join a running job in place of a worker that left it (died, was lost or stopped): same flags, rank and secret;" +
			" the worker reads its shard, gets the current x and contributes until the run ends"}
}
