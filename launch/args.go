package launch

import "strings"

// FlagsFirst moves the flags in args, a command's arguments, ahead of its
// positional arguments, keeping their order, so that `asyncmb info FILE
// --features 123` works like `asyncmb info --features 123 FILE` (urfave/cli
// v2 stops parsing flags at the first positional argument). takesValue
// reports whether the flag of that name (without dashes) takes the next
// argument as its value; "--name=value" carries its own. A "--" ends the
// flags: it and everything after it stay at the end.
func FlagsFirst(args []string, takesValue func(name string) bool) []string {
	var out, pos []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "--":
			pos = append(pos, args[i:]...)
			i = len(args)
		case len(a) > 1 && a[0] == '-':
			out = append(out, a)
			name := strings.TrimLeft(a, "-")
			if !strings.Contains(name, "=") && takesValue(name) && i+1 < len(args) {
				i++
				out = append(out, args[i])
			}
		default:
			pos = append(pos, a)
		}
	}
	return append(out, pos...)
}
