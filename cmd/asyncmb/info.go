package main

import (
	"github.com/asyncmb/asyncmb/data"
	"github.com/urfave/cli/v2"
)

func init() {
	register(&cli.Command{
		Name: "info", ArgsUsage: "FILE", Usage: "describe a LIBSVM file: samples, features, nonzeros, density, labels and their -1/+1 mapping, size and SHA-256",
		Description: "Reads the whole file (and checks every token: a defect is reported as FILE:LINE:COL and exit code 1).\n" +
			"Labels: up to 10 distinct values are listed with their counts; two values give the binary mapping\n" +
			"a classification loss uses (smaller -> -1, larger -> +1); more than two integer labels are a multiclass file\n" +
			"(\"multiclass: K labels\", the first 20 listed with their counts); non-integer targets are reported as\n" +
			"regression targets.",
		Flags: []cli.Flag{
			&cli.IntFlag{Name: "features", EnvVars: envs("features"), Usage: "fix the dimension to `N` (an index beyond it is an error); 0: the largest index in the file"},
		},
		Action: infoAction,
	})
}

func infoAction(c *cli.Context) error {
	if c.NArg() != 1 {
		return usagef("info: want exactly one FILE, got %d arguments", c.NArg())
	}
	features := c.Int("features")
	if features < 0 {
		return usagef("info: --features %d: want N >= 0", features)
	}
	path := c.Args().First()
	d, err := data.Read(path, data.Options{Features: features})
	if err != nil {
		return err
	}
	hash, err := data.FileHash(path)
	if err != nil {
		return err
	}
	return data.WriteInfo(c.App.Writer, d, hash, features)
}
