package main

import (
	"errors"
	"github.com/urfave/cli/v2"
	"strings"
	"unicode"
)

// envVar returns the ASYNCMB_* environment variable name for a flag name:
// "max-delay" -> ASYNCMB_MAX_DELAY. Every flag declares EnvVars: envs(name).
func envVar(flag string) string {
	return "ASYNCMB_" + strings.ToUpper(strings.ReplaceAll(flag, "-", "_"))
}

// envs is the EnvVars slice for a flag name.
func envs(flag string) []string { return []string{envVar(flag)} }

// envNames are the ASYNCMB_* variables of flags: scale's runs get every
// value as a flag, and a list such as ASYNCMB_BATCH=64,256 would not parse
// as train's --batch.
func envNames(flags []cli.Flag) []string {
	var names []string
	for _, f := range flags {
		names = append(names, envVar(f.Names()[0]))
	}
	return names
}

// fieldError turns a config's Validate error, which starts with the name of
// the field ("Reps 0: want N >= 1"), into a usage error naming the flag: the
// field's entry in flags (""; no flag, the message says enough), else the
// field name in kebab case (MaxDelay -> --max-delay).
func fieldError(cmd string, err error, flags map[string]string) error {
	msg := err.Error()
	if name, rest, ok := strings.Cut(msg, " "); ok && name != "" && unicode.IsUpper(rune(name[0])) {
		field, colon := strings.CutSuffix(name, ":")
		flag, ok := flags[field]
		if !ok {
			flag = kebab(field)
		}
		switch {
		case flag == "":
			msg = rest
		case colon:
			msg = "--" + flag + ": " + rest
		default:
			msg = "--" + flag + " " + rest
		}
	}
	if cmd == "" {
		return usageError{errors.New(msg)}
	}
	return usagef("%s: %s", cmd, msg)
}

// kebab is a Go field name as a flag name: MaxDelay -> max-delay.
func kebab(name string) string {
	var b strings.Builder
	for i, r := range name {
		if unicode.IsUpper(r) {
			if i > 0 {
				b.WriteByte('-')
			}
			r = unicode.ToLower(r)
		}
		b.WriteRune(r)
	}
	return b.String()
}
