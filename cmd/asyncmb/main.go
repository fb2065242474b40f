// Command asyncmb solves regularized stochastic optimization problems with the
// asynchronous mini-batch algorithm (Feyzmahdavian, Aytekin and Johansson,
// IEEE TAC 2016) on a master and P workers talking raw TCP.
//
// This package is thin: it declares commands and flags with urfave/cli/v2,
// turns flags into the plain config structs of the other packages, and maps
// errors to exit codes. The commands are grouped by file (train.go: train and
// rank; serial.go: sgd and reference; data.go: info, gen and predict;
// scale.go: scale, simulate and plot; bench.go: the benchmarks), each file
// adding its commands to the app with register from its init function.
package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"sort"

	"github.com/asyncmb/asyncmb/job"
	"github.com/asyncmb/asyncmb/launch"
	"github.com/asyncmb/asyncmb/problem"
	"github.com/urfave/cli/v2"
)

// Exit codes, documented in --help and the README.
const (
	exitOK         = 0
	exitFailure    = job.ExitFailure // the run failed (bad data, I/O error, ...)
	exitUsage      = job.ExitUsage   // bad flags or arguments
	exitRendezvous = 3               // ranks did not all meet before the deadline
	exitLostPeer   = 4               // a rank died or stopped answering during the run
	exitInterrupt  = job.ExitInterrupt
)

// version is set at link time: -ldflags "-X main.version=...".
var version = "dev"

var commands []*cli.Command

// register adds a command to the app; each command file calls it from init.
func register(c *cli.Command) { commands = append(commands, usageOnError(c)) }

var benchCommands []*cli.Command

// registerBench adds a subcommand to `asyncmb bench` (kernels, comm, rates,
// train, ...); each benchmark file calls it from init.
func registerBench(c *cli.Command) { benchCommands = append(benchCommands, usageOnError(c)) }

// usageOnError makes c's flag parse errors usage errors (exit 2).
func usageOnError(c *cli.Command) *cli.Command {
	if c.OnUsageError == nil {
		c.OnUsageError = func(_ *cli.Context, err error, _ bool) error { return usageError{err} }
	}
	return c
}

// usageError marks an error caused by the user's flags or arguments (exit 2).
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

// usagef returns a usage error (exit code 2).
func usagef(format string, args ...any) error {
	return usageError{fmt.Errorf(format, args...)}
}

// exitCoder lets other packages' errors choose an exit code without
// importing urfave/cli (for example a rendezvous timeout returns 3).
type exitCoder interface{ ExitCode() int }

func newApp(stdout, stderr io.Writer) *cli.App {
	cmds := append([]*cli.Command(nil), commands...)
	if len(benchCommands) > 0 {
		subs := append([]*cli.Command(nil), benchCommands...)
		sort.Slice(subs, func(i, j int) bool { return subs[i].Name < subs[j].Name })
		cmds = append(cmds, &cli.Command{Name: "bench", Subcommands: subs,
			Usage:       "measure parsing, kernels, communication, convergence rates and training against baselines measured in the same run",
			Description: "Each benchmark prints its figures and their ratio to a baseline measured in the same run."})
	}
	sort.Slice(cmds, func(i, j int) bool { return cmds[i].Name < cmds[j].Name })
	return &cli.App{
		Name:    "asyncmb",
		Usage:   "asynchronous mini-batch proximal SGD on a master and P workers over TCP",
		Version: version,
		Description: "Fits L1/L2/elastic-net regularized models (logistic, least squares, squared hinge)\n" +
			"with the asynchronous mini-batch algorithm of Feyzmahdavian, Aytekin and Johansson (2016).\n\n" +
			"Every flag can also be set by the ASYNCMB_<FLAG> environment variable shown in its help;\n" +
			"a command-line value beats the environment, which beats the default.\n\n" +
			"Exit codes: 0 ok, 1 run failed, 2 usage error, 3 rendezvous timeout, 4 lost peer, 130 interrupted.",
		Commands: cmds, Writer: stdout, ErrWriter: stderr, EnableBashCompletion: true,
		OnUsageError: func(_ *cli.Context, err error, _ bool) error { return usageError{err} },
		// run, not urfave/cli, turns errors into exit codes: its default
		// handler would os.Exit on any error with an ExitCode method.
		ExitErrHandler: func(*cli.Context, error) {},
	}
}

// exitCode maps an error from a command to the process exit code.
func exitCode(err error) int {
	if err == nil {
		return exitOK
	}
	if ue := (usageError{}); errors.As(err, &ue) {
		return exitUsage
	}
	if ec := exitCoder(nil); errors.As(err, &ec) {
		return ec.ExitCode()
	}
	return exitFailure
}

func run(args []string, stdout, stderr io.Writer) int {
	app := newApp(stdout, stderr)
	err := app.Run(permuteArgs(app, args))
	if fe := (*problem.FieldError)(nil); errors.As(err, &fe) {
		err = problemError(fe) // a problem's field decided after reading the data
	}
	if ue := (*job.UsageError)(nil); errors.As(err, &ue) {
		err = fieldError("", ue.Err, trainFields) // a training job's setting
	}
	var ee job.ExitError
	if err != nil && !(errors.As(err, &ee) && ee.Quiet) {
		fmt.Fprintf(stderr, "asyncmb: %v\n", err)
	}
	return exitCode(err)
}

// permuteArgs moves a command's flags ahead of its positional arguments, so
// that `asyncmb info FILE --features 123` works like `asyncmb info
// --features 123 FILE` (urfave/cli v2 stops parsing flags at the first
// positional argument). A "--" ends the flags as usual.
func permuteArgs(app *cli.App, args []string) []string {
	if len(args) < 2 {
		return args
	}
	cmds, i := app.Commands, 1
	var cmd *cli.Command
	for i < len(args) {
		next := findCommand(cmds, args[i])
		if next == nil {
			break
		}
		cmd, cmds = next, next.Subcommands
		i++
	}
	if cmd == nil || len(cmd.Subcommands) > 0 {
		return args
	}
	return append(args[:i:i], launch.FlagsFirst(args[i:], func(name string) bool {
		f := findFlag(cmd.Flags, name)
		return f != nil && takesValue(f)
	})...)
}

func findCommand(cmds []*cli.Command, name string) *cli.Command {
	i := slices.IndexFunc(cmds, func(c *cli.Command) bool { return c.Name == name || slices.Contains(c.Aliases, name) })
	return index(cmds, i)
}

func findFlag(flags []cli.Flag, name string) cli.Flag {
	return index(flags, slices.IndexFunc(flags, func(f cli.Flag) bool { return slices.Contains(f.Names(), name) }))
}

// index is s[i], or the zero value for i < 0.
func index[T any](s []T, i int) (v T) {
	if i >= 0 {
		v = s[i]
	}
	return v
}

func takesValue(f cli.Flag) bool {
	df, ok := f.(cli.DocGenerationFlag)
	return !ok || df.TakesValue()
}

func main() {
	os.Exit(run(os.Args, os.Stdout, os.Stderr))
}
