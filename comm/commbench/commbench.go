// Package commbench is `asyncmb bench comm`: it times package comm's
// point-to-point messages, collectives and codecs against raw TCP between
// the same processes and against Open MPI, in the same run. Run starts the
// ranks through Options.Launch (the command passes launch.Local), each of
// which calls Rank; the package itself imports only comm, what comm imports
// and the standard library.
package commbench

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/asyncmb/asyncmb/comm"
)

// Options is what Run measures. Launch starts np ranks running the command
// line args ("bench comm-rank ...") and copies rank 0's output to stdout.
type Options struct {
	NPs     []int
	Codec   comm.Codec
	N, Reps int
	Rounds  int
	MPI     string // auto, on, off
	MPISrc  string
	Launch  func(ctx context.Context, np int, args []string, stdout io.Writer) error
}

// Validate names the first field out of range.
func (o Options) Validate() error {
	for _, np := range o.NPs {
		if np < 2 || np > 64 {
			return fmt.Errorf("NPs %v: want integers in [2, 64]", o.NPs)
		}
	}
	switch {
	case o.N < 1 || o.N > 1<<27:
		return fmt.Errorf("N %d: want COUNT in [1, 2^27]", o.N)
	case o.Reps < 1:
		return fmt.Errorf("Reps %d: want N >= 1", o.Reps)
	case o.Rounds < 1:
		return fmt.Errorf("Rounds %d: want N >= 1", o.Rounds)
	case o.MPI != "auto" && o.MPI != "on" && o.MPI != "off":
		return fmt.Errorf("MPI %q: want auto, on or off", o.MPI)
	}
	return nil
}

// benchRecord is one measurement, printed by rank 0 as a JSON line after
// the "BENCH " marker and collected by the parent.
type benchRecord struct {
	Kind string `json:"kind"` // pingpong, throughput, coll, compress, mpi

	Size    int     `json:"size,omitempty"`
	RawP50  float64 `json:"raw_p50_us,omitempty"`
	RawP99  float64 `json:"raw_p99_us,omitempty"`
	CommP50 float64 `json:"comm_p50_us,omitempty"`
	CommP99 float64 `json:"comm_p99_us,omitempty"`
	RawMBs  float64 `json:"raw_mbs,omitempty"`
	Ratio   float64 `json:"ratio,omitempty"`
	Round   int     `json:"round,omitempty"`
	CommMBs float64 `json:"comm_mbs,omitempty"`

	NP    int     `json:"np,omitempty"`
	Op    string  `json:"op,omitempty"`
	P50ms float64 `json:"p50_ms,omitempty"`
	MinMs float64 `json:"min_ms,omitempty"`
	P99ms float64 `json:"p99_ms,omitempty"`

	Payload  string  `json:"payload,omitempty"`
	Repr     string  `json:"repr,omitempty"`
	Codec    string  `json:"codec,omitempty"`
	NNZ      int     `json:"nnz,omitempty"`
	Dim      int     `json:"dim,omitempty"`
	RawBytes int     `json:"raw_bytes,omitempty"`
	Wire     int     `json:"wire_bytes,omitempty"`
	EncMBs   float64 `json:"enc_mbs,omitempty"`
	DecMBs   float64 `json:"dec_mbs,omitempty"`
}

const benchMarker = "BENCH "

// Run times our communicator against raw TCP and Open MPI (when found) and
// prints the table to stdout; progress goes to stderr.
func Run(ctx context.Context, cfg Options, stdout, stderr io.Writer) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	var recs []benchRecord
	mpiBin, mpiNote := buildMPIBench(ctx, cfg)
	if cfg.MPI == "on" && mpiBin == "" {
		return fmt.Errorf("bench comm: --mpi on: %s", mpiNote)
	}
	if mpiBin != "" {
		defer os.RemoveAll(filepath.Dir(mpiBin))
	}
	for i, np := range cfg.NPs {
		// Ours and Open MPI alternate, so that both see the same drift in
		// the machine's load; the first run of ours also does the
		// point-to-point and compression parts.
		runOurs := func(round int) error {
			args := []string{"bench", "comm-rank", "--codec", cfg.Codec.String(), "--n", strconv.Itoa(cfg.N), "--reps", strconv.Itoa(cfg.Reps)}
			if i == 0 && round == 0 {
				args = append(args, "--pt2pt", "--compress")
			}
			fmt.Fprintf(stderr, "bench comm: %d ranks, round %d...\n", np, round+1)
			out := &lockedBuffer{}
			err := cfg.Launch(ctx, np, args, out)
			r, perr := parseBenchRecords(out.String())
			if err != nil {
				return fmt.Errorf("bench comm: %d ranks: %w", np, err)
			}
			if perr != nil {
				return fmt.Errorf("bench comm: %d ranks: %w", np, perr)
			}
			for k := range r {
				r[k].Round = round
			}
			recs = append(recs, r...)
			return nil
		}
		runMPI := func(round int) error {
			if mpiBin == "" {
				return nil
			}
			m, err := runMPIBench(ctx, mpiBin, np, cfg)
			if err != nil {
				if cfg.MPI == "on" {
					return err
				}
				mpiNote, mpiBin = err.Error(), ""
				return nil
			}
			for k := range m {
				m[k].Round = round
			}
			recs = append(recs, m...)
			return nil
		}
		for round := range cfg.Rounds {
			first, second := runOurs, runMPI
			if round%2 == 1 {
				first, second = runMPI, runOurs
			}
			if err := first(round); err != nil {
				return err
			}
			if err := second(round); err != nil {
				return err
			}
		}
	}
	printCommBench(stdout, cfg, recs, mpiNote)
	return nil
}

// lockedBuffer is a bytes.Buffer safe for the launcher's concurrent writes.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func parseBenchRecords(out string) ([]benchRecord, error) {
	var recs []benchRecord
	sc := bufio.NewScanner(strings.NewReader(out))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		_, js, ok := strings.Cut(sc.Text(), benchMarker)
		if !ok {
			continue
		}
		var r benchRecord
		if err := json.Unmarshal([]byte(js), &r); err != nil {
			return nil, fmt.Errorf("bad result line %q: %w", sc.Text(), err)
		}
		recs = append(recs, r)
	}
	return recs, sc.Err()
}

// mpiSource finds the C source of the MPI baseline.
func mpiSource(flag string) (string, error) {
	if flag != "" {
		return flag, nil
	}
	cands := []string{filepath.Join("bench", "mpi", "collectives.c")}
	if exe, err := os.Executable(); err == nil {
		cands = append(cands, filepath.Join(filepath.Dir(exe), "..", "bench", "mpi", "collectives.c"))
	}
	for _, p := range cands {
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("no MPI baseline source at %v (set --mpi-src)", cands)
}

// buildMPIBench compiles the MPI baseline into a temporary directory, or
// says why it cannot.
func buildMPIBench(ctx context.Context, cfg Options) (bin, note string) {
	if cfg.MPI == "off" {
		return "", "--mpi off"
	}
	for _, tool := range []string{"mpicc", "mpirun"} {
		if _, err := exec.LookPath(tool); err != nil {
			return "", tool + " not found (Debian: openmpi-bin libopenmpi-dev)"
		}
	}
	src, err := mpiSource(cfg.MPISrc)
	if err != nil {
		return "", err.Error()
	}
	dir, err := os.MkdirTemp("", "asyncmb-mpi-")
	if err != nil {
		return "", err.Error()
	}
	bin = filepath.Join(dir, "collectives")
	out, err := exec.CommandContext(ctx, "mpicc", "-O2", "-o", bin, src).CombinedOutput()
	if err != nil {
		os.RemoveAll(dir)
		return "", fmt.Sprintf("mpicc %s: %v: %s", src, err, out)
	}
	return bin, ""
}

func runMPIBench(ctx context.Context, bin string, np int, cfg Options) ([]benchRecord, error) {
	cmd := exec.CommandContext(ctx, "mpirun", "--allow-run-as-root", "--oversubscribe",
		"--mca", "pml", "ob1", "--mca", "btl", "tcp,self", "-np", strconv.Itoa(np),
		bin, strconv.Itoa(cfg.N), strconv.Itoa(cfg.Reps), "3")
	cmd.Env = append(os.Environ(), "OMPI_MCA_btl_tcp_if_include=lo")
	out, err := cmd.CombinedOutput()
	if err != nil {
		return nil, fmt.Errorf("mpirun -np %d: %v: %s", np, err, out)
	}
	var recs []benchRecord
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 || f[0] != "mpi" {
			continue
		}
		r := benchRecord{Kind: "mpi", Op: f[1], NP: np}
		for _, kv := range f[2:] {
			k, v, _ := strings.Cut(kv, "=")
			x, _ := strconv.ParseFloat(v, 64)
			switch k {
			case "p50_ms":
				r.P50ms = x
			case "min_ms":
				r.MinMs = x
			case "p99_ms":
				r.P99ms = x
			}
		}
		recs = append(recs, r)
	}
	if len(recs) != 2 {
		return nil, fmt.Errorf("mpirun -np %d: unexpected output: %s", np, out)
	}
	return recs, nil
}

func printCommBench(w io.Writer, cfg Options, recs []benchRecord, mpiNote string) {
	fmt.Fprintf(w, "asyncmb bench comm: ranks as local processes over loopback, %d CPUs, codec %v\n", runtime.NumCPU(), cfg.Codec)
	var rtt8, thr float64
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(w, "\nPing-pong round trip, ranks 0 and 1 (raw = plain TCP between the same processes; the two alternate in blocks of up to 10)")
	fmt.Fprintln(tw, "size\traw p50\traw p99\tcomm p50\tcomm p99\tp50 comm/raw\t")
	for _, r := range recs {
		if r.Kind != "pingpong" {
			continue
		}
		ratio := r.CommP50 / r.RawP50
		if r.Size == 8 {
			rtt8 = ratio
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%.2f\t\n", sizeName(r.Size), usStr(r.RawP50), usStr(r.RawP99), usStr(r.CommP50), usStr(r.CommP99), ratio)
	}
	tw.Flush()
	for _, r := range recs {
		if r.Kind == "throughput" {
			thr = r.Ratio
			fmt.Fprintf(w, "\nOne-way throughput, 4 MiB messages (medians of 11 alternating rounds): raw %.0f MB/s, comm %.0f MB/s;\nmedian of the per-pair ratios comm/raw %.2f\n", r.RawMBs, r.CommMBs, thr)
		}
	}

	fmt.Fprintf(w, "\nCollectives of %d float64 (%s): p50 of %d repetitions (each the max over ranks), median over %d alternating rounds\n", cfg.N, sizeName(8*cfg.N), cfg.Reps, cfg.Rounds)
	if mpiNote != "" {
		fmt.Fprintf(w, "(no Open MPI baseline: %s)\n", mpiNote)
	}
	fmt.Fprintln(tw, "ranks\top\tcomm p50\tcomm min\tOpen MPI p50\tOpen MPI min\tcomm/MPI per round\tmedian\t")
	type key struct {
		np int
		op string
	}
	var keys []key
	ours, mpi := map[key][]benchRecord{}, map[key][]benchRecord{}
	for _, r := range recs {
		k := key{r.NP, r.Op}
		switch r.Kind {
		case "coll":
			if len(ours[k]) == 0 {
				keys = append(keys, k)
			}
			ours[k] = append(ours[k], r)
		case "mpi":
			mpi[k] = append(mpi[k], r)
		}
	}
	collRatio := map[key]float64{}
	for _, k := range keys {
		o, m := ours[k], mpi[k]
		mp50, mmin, perRound, ratio := "-", "-", "-", "-"
		if len(m) > 0 {
			mp50, mmin = fmt.Sprintf("%.2f ms", medianOf(m, func(r benchRecord) float64 { return r.P50ms })), fmt.Sprintf("%.2f ms", minOf(m))
			var rs []string
			var vals []float64
			for i := range min(len(o), len(m)) {
				vals = append(vals, o[i].P50ms/m[i].P50ms)
				rs = append(rs, fmt.Sprintf("%.2f", vals[i]))
			}
			perRound = strings.Join(rs, " ")
			slices.Sort(vals)
			collRatio[k] = vals[(len(vals)-1)/2]
			ratio = fmt.Sprintf("%.2f", collRatio[k])
		}
		fmt.Fprintf(tw, "%d\t%s\t%.2f ms\t%.2f ms\t%s\t%s\t%s\t%s\t\n", k.np, k.op, medianOf(o, func(r benchRecord) float64 { return r.P50ms }), minOf(o), mp50, mmin, perRound, ratio)
	}
	tw.Flush()

	fmt.Fprintln(w, "\nCompression of realistic payloads (rcv1-like synthetic logistic regression, see --help);")
	fmt.Fprintln(w, "ratio = dense float64 bytes / frame bytes; speeds in MB/s of the message's raw bytes")
	fmt.Fprintln(tw, "payload\tnnz/dim\trepr\tcodec\traw bytes\tframe bytes\tratio\tencode\tdecode\t")
	for _, r := range recs {
		if r.Kind != "compress" {
			continue
		}
		fmt.Fprintf(tw, "%s\t%d/%d\t%s\t%s\t%d\t%d\t%.2f\t%.0f\t%.0f\t\n", r.Payload, r.NNZ, r.Dim, r.Repr, r.Codec, r.RawBytes, r.Wire, float64(8*r.Dim)/float64(r.Wire), r.EncMBs, r.DecMBs)
	}
	tw.Flush()

	fmt.Fprintln(w, "\nTargets")
	check := func(name string, ok bool, got string) {
		mark := "MISS"
		if ok {
			mark = "ok"
		}
		fmt.Fprintf(w, "  %-4s %s: %s\n", mark, name, got)
	}
	if thr > 0 {
		check("4 MiB throughput >= 0.80 of raw TCP", thr >= 0.8, fmt.Sprintf("%.2f", thr))
	}
	if rtt8 > 0 {
		check("8 B round trip <= 1.5x raw TCP", rtt8 <= 1.5, fmt.Sprintf("%.2fx", rtt8))
	}
	for _, op := range []string{"bcast", "allreduce"} {
		if r, ok := collRatio[key{4, op}]; ok {
			check(op+" on 4 ranks no slower than Open MPI", r <= 1, fmt.Sprintf("%.2fx MPI's p50", r))
		}
	}
}

// medianOf is the (lower) median of f over recs.
func medianOf(recs []benchRecord, f func(benchRecord) float64) float64 {
	v := make([]float64, len(recs))
	for i, r := range recs {
		v[i] = f(r)
	}
	slices.Sort(v)
	return v[(len(v)-1)/2]
}

func minOf(recs []benchRecord) float64 {
	m := recs[0].MinMs
	for _, r := range recs {
		m = min(m, r.MinMs)
	}
	return m
}

func sizeName(n int) string {
	switch {
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", n>>20)
	case n >= 1<<10 && n%(1<<10) == 0:
		return fmt.Sprintf("%d KiB", n>>10)
	}
	return fmt.Sprintf("%d B", n)
}

func usStr(us float64) string {
	if us >= 1000 {
		return fmt.Sprintf("%.2f ms", us/1000)
	}
	return fmt.Sprintf("%.1f µs", us)
}

// collectives times Bcast and Allreduce like bench/mpi/collectives.c:
// after a barrier, each rank times the operation; the repetition's time is
// the max over ranks. The vectors are normal random numbers, like the
// iterates and gradients asyncmb moves (incompressible, so the codec's
// choice is exercised honestly); results are checked on every repetition
// against values every rank can recompute from the seeds.
func collectives(ctx context.Context, cm *comm.Comm, n, reps int, emit func(benchRecord)) error {
	p := cm.Size()
	contrib := make([][]float64, p) // every rank's vector, to check sums
	for r := range contrib {
		rng := rand.New(rand.NewPCG(uint64(r), 99))
		contrib[r] = make([]float64, n)
		for i := range contrib[r] {
			contrib[r][i] = rng.NormFloat64()
		}
	}
	sum := make([]float64, n)
	for i := range sum {
		for r := range p { // the ring adds in no fixed order: compare with a tolerance
			sum[i] += contrib[r][i]
		}
	}
	x := make([]float64, n)
	dt := []float64{0}
	const warmup = 3
	for _, op := range []string{"bcast", "allreduce"} {
		var times []float64
		for k := -warmup; k < reps; k++ {
			switch {
			case op == "allreduce" || cm.Rank() == 0:
				copy(x, contrib[cm.Rank()])
			default:
				clear(x)
			}
			if err := cm.Barrier(ctx); err != nil {
				return err
			}
			start := time.Now()
			var err error
			if op == "bcast" {
				err = cm.Bcast(ctx, 0, x)
			} else {
				err = cm.Allreduce(ctx, x, comm.OpSum)
			}
			dt[0] = float64(time.Since(start).Nanoseconds())
			if err != nil {
				return err
			}
			want := contrib[0]
			if op == "allreduce" {
				want = sum
			}
			for _, i := range []int{0, n / 3, n / 2, n - 1} {
				if math.Abs(x[i]-want[i]) > 1e-12*float64(p) {
					return fmt.Errorf("bench comm: %s gave x[%d] = %v, want %v", op, i, x[i], want[i])
				}
			}
			if err := cm.Reduce(ctx, 0, dt, comm.OpMax); err != nil {
				return err
			}
			if k >= 0 {
				times = append(times, dt[0]/1e6)
			}
		}
		slices.Sort(times)
		emit(benchRecord{Kind: "coll", NP: p, Op: op, P50ms: times[(len(times)-1)/2], MinMs: times[0], P99ms: times[int(0.99*float64(len(times)-1)+0.5)]})
	}
	return nil
}

// Tags of the point-to-point benchmark.
const (
	tagBenchAddr = 100
	tagBenchPing = 101
	tagBenchPong = 102
	tagBenchAck  = 103
)

// pointToPoint runs on ranks 0 and 1: ping-pong and throughput, each
// size alternating between a plain TCP connection and the communicator.
func pointToPoint(ctx context.Context, cm *comm.Comm, emit func(benchRecord)) error {
	raw, err := rawConn(ctx, cm)
	if err != nil {
		return err
	}
	defer raw.Close()
	buf := make([]byte, 4<<20)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range buf {
		buf[i] = byte(rng.Uint32())
	}
	peer := 1 - cm.Rank()
	var m comm.Msg
	defer m.Release()
	rawRTT := func(size int) (time.Duration, error) {
		start := time.Now()
		if cm.Rank() == 0 {
			if _, err := raw.Write(buf[:size]); err != nil {
				return 0, err
			}
			_, err := io.ReadFull(raw, buf[:size])
			return time.Since(start), err
		}
		if _, err := io.ReadFull(raw, buf[:size]); err != nil {
			return 0, err
		}
		_, err := raw.Write(buf[:size])
		return 0, err
	}
	out := &comm.Msg{}
	commRTT := func(size int) (time.Duration, error) {
		start := time.Now()
		if cm.Rank() == 0 {
			out.Bytes = buf[:size]
			if err := cm.Send(ctx, peer, tagBenchPing, out); err != nil {
				return 0, err
			}
			err := cm.Recv(ctx, peer, tagBenchPong, &m)
			return time.Since(start), err
		}
		if err := cm.Recv(ctx, peer, tagBenchPing, &m); err != nil {
			return 0, err
		}
		out.Bytes = m.Bytes
		return 0, cm.Send(ctx, peer, tagBenchPong, out)
	}
	for _, size := range []int{8, 64, 1 << 10, 16 << 10, 256 << 10, 1 << 20, 4 << 20} {
		reps := max(30, min(3000, (64<<20)/size))
		// Raw and ours alternate in blocks of a few round trips, so that
		// both see the same states of the machine: an 8 B round trip takes
		// 20 us or 60-120 us depending on how the scheduler places the two
		// processes, which changes every few hundred ms, and blocks of
		// 1000 gave ratios of 1.16-1.58 for one code, blocks of 10
		// 1.24-1.26.
		block := max(1, min(10, reps/30))
		for _, f := range []func(int) (time.Duration, error){rawRTT, commRTT} {
			for range 2 { // warm-up
				if _, err := f(size); err != nil {
					return fmt.Errorf("bench comm: ping-pong %d B: %w", size, err)
				}
			}
		}
		var rt, ct []time.Duration
		for k := range 2 * reps {
			f, dst := rawRTT, &rt
			if (k/block)%2 == 1 {
				f, dst = commRTT, &ct
			}
			d, err := f(size)
			if err != nil {
				return fmt.Errorf("bench comm: ping-pong %d B: %w", size, err)
			}
			*dst = append(*dst, d)
		}
		if cm.Rank() == 0 {
			rp50, rp99 := pctUS(rt)
			cp50, cp99 := pctUS(ct)
			emit(benchRecord{Kind: "pingpong", Size: size, RawP50: rp50, RawP99: rp99, CommP50: cp50, CommP99: cp99})
		}
	}

	// One-way throughput: rank 0 streams msgs 4 MiB messages, rank 1 acks
	// the last one. Rounds come in pairs (raw and ours, in alternating
	// order) and each pair gives a ratio: on a shared machine the other
	// processes' load drifts, and a pair sees about the same load. The
	// medians of the rounds and of the pair ratios are reported.
	const msgSize, msgs, pairs = 4 << 20, 32, 11
	x := make([]float64, msgSize/8)
	for i := range x {
		x[i] = rng.NormFloat64()
	}
	rawRound := func() error {
		if cm.Rank() == 0 {
			for range msgs {
				if _, err := raw.Write(buf[:msgSize]); err != nil {
					return err
				}
			}
			_, err := io.ReadFull(raw, buf[:1])
			return err
		}
		for range msgs {
			if _, err := io.ReadFull(raw, buf[:msgSize]); err != nil {
				return err
			}
		}
		_, err := raw.Write(buf[:1])
		return err
	}
	commRound := func() error {
		if cm.Rank() == 0 {
			out := &comm.Msg{Dense: x}
			for range msgs {
				if err := cm.Send(ctx, 1, tagBenchPing, out); err != nil {
					return err
				}
			}
			return cm.Recv(ctx, 1, tagBenchAck, &m)
		}
		for range msgs {
			if err := cm.Recv(ctx, 0, tagBenchPing, &m); err != nil {
				return err
			}
			if len(m.Dense) != len(x) {
				return fmt.Errorf("bench comm: got %d floats, want %d", len(m.Dense), len(x))
			}
		}
		return cm.Send(ctx, 0, tagBenchAck, &comm.Msg{})
	}
	timed := func(f func() error) (float64, error) {
		start := time.Now()
		err := f()
		return float64(msgs*msgSize) / time.Since(start).Seconds() / 1e6, err
	}
	var rawT, commT, ratios []float64
	for pair := range pairs {
		first, second := rawRound, commRound
		if pair%2 == 1 {
			first, second = commRound, rawRound
		}
		a, err := timed(first)
		if err != nil {
			return err
		}
		b, err := timed(second)
		if err != nil {
			return err
		}
		if pair%2 == 1 {
			a, b = b, a
		}
		rawT, commT, ratios = append(rawT, a), append(commT, b), append(ratios, b/a)
	}
	slices.Sort(rawT)
	slices.Sort(commT)
	slices.Sort(ratios)
	emit(benchRecord{Kind: "throughput", RawMBs: rawT[pairs/2], CommMBs: commT[pairs/2], Ratio: ratios[pairs/2]})
	return nil
}

// rawConn opens the baseline: a plain TCP connection between ranks 0 and 1
// (rank 1 listens and tells rank 0 its address through the communicator).
func rawConn(ctx context.Context, cm *comm.Comm) (net.Conn, error) {
	var m comm.Msg
	defer m.Release()
	if cm.Rank() == 1 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		defer ln.Close()
		if err := cm.Send(ctx, 0, tagBenchAddr, &comm.Msg{Bytes: []byte(ln.Addr().String())}); err != nil {
			return nil, err
		}
		return ln.Accept()
	}
	if err := cm.Recv(ctx, 1, tagBenchAddr, &m); err != nil {
		return nil, err
	}
	var d net.Dialer
	return d.DialContext(ctx, "tcp", string(m.Bytes))
}

func pctUS(d []time.Duration) (p50, p99 float64) {
	if len(d) == 0 {
		return 0, 0
	}
	slices.Sort(d)
	return float64(d[(len(d)-1)/2].Nanoseconds()) / 1e3, float64(d[int(0.99*float64(len(d)-1)+0.5)].Nanoseconds()) / 1e3
}

// RankOptions are the parts one rank of the benchmark runs.
type RankOptions struct {
	PointToPoint bool // ranks 0 and 1: ping-pong and throughput against raw TCP
	Compress     bool // rank 0: the codecs on realistic payloads
	N, Reps      int  // the collectives' float64 count and repetitions
}

// Validate checks o (the flags it comes from are named, as the hidden
// comm-rank command takes them).
func (o RankOptions) Validate() error {
	if o.N < 1 || o.Reps < 1 {
		return fmt.Errorf("--n %d --reps %d: want both >= 1", o.N, o.Reps)
	}
	return nil
}

// ParseNPs parses bench comm's --np, comma-separated numbers of ranks
// (Validate checks their range).
func ParseNPs(v string) ([]int, error) {
	var nps []int
	for _, f := range strings.Split(v, ",") {
		np, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil {
			return nil, fmt.Errorf("--np %q: want comma-separated integers in [2, 64]", v)
		}
		nps = append(nps, np)
	}
	return nps, nil
}

// Rank is one rank of the benchmark over cm: it runs its parts, and rank 0
// prints each record to w as a line "BENCH {json}" for Run to collect.
func Rank(ctx context.Context, cm *comm.Comm, o RankOptions, w io.Writer) error {
	emit := func(r benchRecord) {
		if cm.Rank() == 0 {
			b, _ := json.Marshal(r)
			fmt.Fprintf(w, "%s%s\n", benchMarker, b)
		}
	}
	if o.PointToPoint && cm.Rank() <= 1 {
		if err := pointToPoint(ctx, cm, emit); err != nil {
			return err
		}
	}
	if err := cm.Barrier(ctx); err != nil {
		return err
	}
	if err := collectives(ctx, cm, o.N, o.Reps, emit); err != nil {
		return err
	}
	if o.Compress && cm.Rank() == 0 {
		if err := benchCompression(emit); err != nil {
			return err
		}
	}
	return cm.Barrier(ctx)
}
