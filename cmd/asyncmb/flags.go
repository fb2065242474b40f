package main

import (
	"strings"
)

// envVar returns the ASYNCMB_* environment variable name for a flag name:
// "max-delay" -> ASYNCMB_MAX_DELAY. Every flag declares EnvVars: envs(name).
func envVar(flag string) string {
	return "ASYNCMB_" + strings.ToUpper(strings.ReplaceAll(flag, "-", "_"))
}

// envs is the EnvVars slice for a flag name.
func envs(flag string) []string { return []string{envVar(flag)} }
