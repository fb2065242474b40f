package launch

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// ErrHostlist reports a Slurm hostlist that cannot be expanded.
var ErrHostlist = errors.New("launch: invalid hostlist")

// maxHostlist bounds the number of names one hostlist may expand to, so
// that a typo such as n[1-999999999] is an error rather than a memory bomb.
const maxHostlist = 1 << 16

// ExpandHostlist expands a Slurm hostlist such as "n[01-03,07],gpu[1,5]"
// into its host names, in order and with repetitions kept, as
// `scontrol show hostnames` does: a comma outside brackets separates
// items, a bracket group holds a comma list of numbers and ranges lo-hi
// (zero-padded to the width of lo when lo has a leading zero), and several
// groups in one item give every combination, the last group varying
// fastest ("a[1-2]b[3-4]" is a1b3 a1b4 a2b3 a2b4). Text after the last
// group is kept as a suffix ("gpu[1,5]-ib" is gpu1-ib gpu5-ib), which
// Slurm 22.05's scontrol refuses but later versions accept. Empty items
// are skipped.
func ExpandHostlist(list string) ([]string, error) {
	var out []string
	for _, item := range splitTop(list) {
		if item == "" {
			continue
		}
		names, err := expandItem(item, maxHostlist-len(out))
		if err != nil {
			return nil, fmt.Errorf("%w %q: %v", ErrHostlist, list, err)
		}
		out = append(out, names...)
	}
	return out, nil
}

// splitTop splits s at the commas that are outside brackets.
func splitTop(s string) []string {
	var parts []string
	depth, start := 0, 0
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '[':
			depth++
		case ']':
			depth--
		case ',':
			if depth == 0 {
				parts = append(parts, s[start:i])
				start = i + 1
			}
		}
	}
	return append(parts, s[start:])
}

// expandItem expands one item (no top-level comma) to at most limit names.
func expandItem(item string, limit int) ([]string, error) {
	names := []string{""}
	for item != "" {
		open := strings.IndexByte(item, '[')
		if open < 0 {
			if strings.IndexByte(item, ']') >= 0 {
				return nil, fmt.Errorf("unmatched ']'")
			}
			for i := range names {
				names[i] += item
			}
			break
		}
		closing := strings.IndexByte(item[open:], ']')
		if closing < 0 {
			return nil, fmt.Errorf("unmatched '['")
		}
		closing += open
		prefix, group := item[:open], item[open+1:closing]
		if strings.ContainsAny(prefix, "]") || strings.ContainsAny(group, "[") {
			return nil, fmt.Errorf("nested or unmatched brackets")
		}
		nums, err := expandGroup(group, limit)
		if err != nil {
			return nil, err
		}
		if len(names)*len(nums) > limit {
			return nil, fmt.Errorf("more than %d names", maxHostlist)
		}
		next := make([]string, 0, len(names)*len(nums))
		for _, n := range names {
			for _, x := range nums {
				next = append(next, n+prefix+x)
			}
		}
		names, item = next, item[closing+1:]
	}
	return names, nil
}

// expandGroup expands the inside of one bracket group: "01-03,07".
func expandGroup(group string, limit int) ([]string, error) {
	var out []string
	for _, r := range strings.Split(group, ",") {
		lo, hi, isRange := strings.Cut(r, "-")
		if !isRange {
			hi = lo
		}
		a, err1 := parseDigits(lo)
		b, err2 := parseDigits(hi)
		if err1 != nil || err2 != nil {
			return nil, fmt.Errorf("range %q: want N or LO-HI with decimal numbers", r)
		}
		if b < a {
			return nil, fmt.Errorf("range %q: %d > %d", r, a, b)
		}
		if b-a >= uint64(limit-len(out)) {
			return nil, fmt.Errorf("more than %d names", maxHostlist)
		}
		width := 0
		if len(lo) > 1 && lo[0] == '0' {
			width = len(lo)
		}
		for v := a; v <= b; v++ {
			s := strconv.FormatUint(v, 10)
			if len(s) < width {
				s = strings.Repeat("0", width-len(s)) + s
			}
			out = append(out, s)
		}
	}
	return out, nil
}

func parseDigits(s string) (uint64, error) {
	if s == "" || strings.Trim(s, "0123456789") != "" {
		return 0, errors.New("not a number")
	}
	return strconv.ParseUint(s, 10, 63)
}
