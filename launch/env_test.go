package launch

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/asyncmb/asyncmb/comm"
)

func TestSlurmPort(t *testing.T) {
	lo, hi, err := ParsePortRange(DefaultPortRange)
	if err != nil {
		t.Fatal(err)
	}
	// Steps 0-15 of 625 consecutive jobs (the range's size / 16) all get
	// distinct ports within the range.
	seen := map[int]string{}
	for job := uint64(1234560); job < 1234560+625; job++ {
		for step := range uint64(16) {
			p := SlurmPort(job, step, lo, hi)
			if p < lo || p > hi {
				t.Fatalf("job %d step %d: port %d outside %d-%d", job, step, p, lo, hi)
			}
			id := strconv.FormatUint(job, 10) + "." + strconv.FormatUint(step, 10)
			if prev, dup := seen[p]; dup {
				t.Fatalf("job step %s and %s share port %d", prev, id, p)
			}
			seen[p] = id
		}
	}
	// A tiny range still stays inside; the batch step's id (2^32-2) too.
	for step := range uint64(40) {
		if p := SlurmPort(99, step, 7000, 7002); p < 7000 || p > 7002 {
			t.Fatalf("port %d outside 7000-7002", p)
		}
	}
	if p := SlurmPort(5, 1<<32-2, lo, hi); p < lo || p > hi {
		t.Fatalf("batch step: port %d", p)
	}
	for _, bad := range []string{"", "1000", "0-10", "10-5", "1-65536", "a-b", "100-"} {
		if _, _, err := ParsePortRange(bad); err == nil {
			t.Errorf("ParsePortRange(%q) accepted", bad)
		}
	}
}

func TestTasksOnNode(t *testing.T) {
	for _, tc := range []struct {
		list string
		node int
		want int
	}{
		{"2(x3)", 0, 2}, {"2(x3)", 2, 2}, {"2(x3)", 3, 0}, {"4,2(x2),1", 0, 4}, {"4,2(x2),1", 2, 2}, {"4,2(x2),1", 3, 1}, {"x", 0, 0}, {"", 0, 0},
	} {
		if got := TasksOnNode(tc.list, tc.node); got != tc.want {
			t.Errorf("TasksOnNode(%q, %d) = %d, want %d", tc.list, tc.node, got, tc.want)
		}
	}
}

// slurmEnv is the environment srun gives task rank of a 2-task step.
func slurmEnv(rank int, extra ...string) map[string]string {
	env := map[string]string{"SLURM_PROCID": strconv.Itoa(rank), "SLURM_NTASKS": "2", "SLURM_JOB_ID": "4242", "SLURM_STEP_ID": "3",
		"SLURM_STEP_NODELIST": "localhost,n[2-3]", "SLURM_NODEID": "0", "SLURM_CPUS_ON_NODE": "8", "SLURM_STEP_TASKS_PER_NODE": "2,1(x2)",
		EnvSecret: "a secret of 16+ bytes"}
	for i := 0; i+1 < len(extra); i += 2 {
		env[extra[i]] = extra[i+1]
	}
	return env
}

func lookMap(env map[string]string) Lookup {
	return func(k string) (string, string) { return env[k], "" }
}

func TestIdentifySlurm(t *testing.T) {
	id, err := Identify(lookMap(slurmEnv(1)))
	if err != nil {
		t.Fatal(err)
	}
	lo, hi, _ := ParsePortRange(DefaultPortRange)
	wantAddr := net.JoinHostPort("localhost", strconv.Itoa(SlurmPort(4242, 3, lo, hi)))
	c := id.Config
	if c.Rank != 1 || c.Size != 2 || c.JobID != "slurm-4242.3" || c.Addr != wantAddr || id.Launcher != "srun" ||
		id.SlurmJobID != "4242" || id.SlurmStepID != "3" || strings.Join(id.Nodes, " ") != "localhost n2 n3" {
		t.Fatalf("%+v", id)
	}
	if !strings.Contains(id.AddrFrom, "SLURM_STEP_NODELIST=localhost,n[2-3]") || !strings.Contains(id.AddrFrom, "SLURM_JOB_ID=4242") {
		t.Errorf("AddrFrom %q", id.AddrFrom)
	}
	if want := max(1, min(8, runtimeCPUs())/2); id.Procs != want {
		t.Errorf("Procs %d, want %d", id.Procs, want)
	}
	// --port beats the derived port; a flag is named as such.
	id, err = Identify(func(k string) (string, string) {
		if k == EnvPort {
			return "7123", "port"
		}
		return slurmEnv(1)[k], ""
	})
	if err != nil || id.Config.Addr != "localhost:7123" || !strings.Contains(id.AddrFrom, "--port 7123") {
		t.Fatalf("%v %+v", err, id)
	}
	// Ours beat Slurm's.
	id, err = Identify(lookMap(slurmEnv(1, EnvAddr, "10.1.2.3:9", EnvJobID, "mine")))
	if err != nil || id.Config.Addr != "10.1.2.3:9" || id.Config.JobID != "mine" || id.AddrFrom != EnvAddr+"=10.1.2.3:9" {
		t.Fatalf("%v %+v", err, id)
	}
	for name, env := range map[string]map[string]string{
		"bad hostlist":   slurmEnv(1, "SLURM_STEP_NODELIST", "n[2-1]"),
		"bad port":       slurmEnv(1, EnvPort, "70000"),
		"bad range":      slurmEnv(1, EnvPortRange, "9-1"),
		"no step id":     slurmEnv(1, "SLURM_STEP_ID", "x"),
		"bad rendezvous": slurmEnv(1, EnvRendezvous, "redis://x"),
	} {
		if _, err := Identify(lookMap(env)); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func runtimeCPUs() int { return runtime.NumCPU() }

func TestSecretFile(t *testing.T) {
	dir := t.TempDir()
	f := filepath.Join(dir, SecretFileName)
	os.WriteFile(f, []byte("from-submit-dir\n"), 0o600)
	env := slurmEnv(0, "SLURM_SUBMIT_DIR", dir)
	delete(env, EnvSecret)
	id, err := Identify(lookMap(env))
	if err != nil || string(id.Config.Secret) != "from-submit-dir" {
		t.Fatalf("%v %q", err, id.Config.Secret)
	}
	os.Chmod(f, 0o644)
	if _, err := Identify(lookMap(env)); err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Fatalf("a world-readable secret file: %v", err)
	}
	env[EnvSecretFile] = f
	if _, err := Identify(lookMap(env)); err == nil {
		t.Fatal("a world-readable ASYNCMB_SECRET_FILE accepted")
	}
}

// TestFileRendezvous: rank 0 writes its address into DIR/<job id>/ (an
// atomic rename), rank 1 polls for it, and they meet; an old job's file
// is never read, and a rank that waits in vain says where it looked.
func TestFileRendezvous(t *testing.T) {
	dir := t.TempDir()
	// A stale address of another job in the same directory.
	os.MkdirAll(filepath.Join(dir, "slurm-4241.3"), 0o700)
	os.WriteFile(filepath.Join(dir, "slurm-4241.3", comm.AddrKey), []byte("127.0.0.1:1"), 0o600)
	ids := make([]Identity, 2)
	for r := range ids {
		id, err := Identify(lookMap(slurmEnv(r, EnvRendezvous, "file://"+dir, EnvRendezvousTimeout, "10s")))
		if err != nil {
			t.Fatal(err)
		}
		ids[r] = id
	}
	if !strings.Contains(ids[1].AddrFrom, filepath.Join(dir, "slurm-4242.3", comm.AddrKey)) {
		t.Errorf("AddrFrom %q", ids[1].AddrFrom)
	}
	ctx := context.Background()
	errs := make(chan error, 2)
	go func() {
		time.Sleep(300 * time.Millisecond) // rank 1 polls first
		c, err := comm.New(ctx, ids[0].Config)
		if err == nil {
			c.Close()
		}
		errs <- err
	}()
	go func() {
		if err := ids[1].Resolve(ctx); err != nil {
			errs <- err
			return
		}
		c, err := comm.New(ctx, ids[1].Config)
		if err == nil {
			c.Close()
		}
		errs <- err
	}()
	for range 2 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	if ids[1].Config.Bind == "" {
		t.Error("rank 1 did not bind to the address it reaches rank 0 from")
	}

	// Nobody publishes: Resolve gives up after the rendezvous timeout,
	// naming the file, with exit code 3.
	id, err := Identify(lookMap(slurmEnv(1, EnvRendezvous, "file://"+dir, "SLURM_JOB_ID", "77", EnvRendezvousTimeout, "300ms")))
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	err = id.Resolve(ctx)
	var re *RendezvousError
	if !errors.As(err, &re) || re.ExitCode() != 3 || !strings.Contains(err.Error(), filepath.Join(dir, "slurm-77.3", comm.AddrKey)) {
		t.Fatalf("%v", err)
	}
	if took := time.Since(start); took > 3*time.Second {
		t.Errorf("took %v for a 300ms timeout", took)
	}
}

func TestHostfile(t *testing.T) {
	dir := t.TempDir()
	write := func(text string) string {
		p := filepath.Join(dir, "hosts")
		os.WriteFile(p, []byte(text), 0o644)
		return p
	}
	hosts, err := ParseHostfile(write("# cluster\nnode1 slots=2\n\nnode2   # one slot\nnode3 slots=3 max_slots=4\n"))
	if err != nil {
		t.Fatal(err)
	}
	got, err := Place(hosts, 0)
	if err != nil || strings.Join(got, " ") != "node1 node1 node2 node3 node3 node3" {
		t.Fatalf("%v %v", got, err)
	}
	if got, _ := Place(hosts, 4); strings.Join(got, " ") != "node1 node1 node2 node3" {
		t.Fatalf("np 4: %v", got)
	}
	if _, err := Place(hosts, 7); err == nil {
		t.Error("7 ranks on 6 slots accepted")
	}
	for _, bad := range []string{"", "# nothing\n", "a slots=0\n", "a slots=x\n", "a cores=2\n", "a slots=5000\n", "a slots=4000\nb slots=200\n"} {
		if _, err := ParseHostfile(write(bad)); err == nil {
			t.Errorf("hostfile %q accepted", bad)
		}
	}
}

func TestRemoteCommand(t *testing.T) {
	got := remoteCommand("/work dir", []string{"A=1", "B=it's"}, true, 2, "/bin/asyncmb", []string{"rank", "--data=x y"})
	want := `cd '/work dir' && g=$(( $(getconf _NPROCESSORS_ONLN) / 2 )) && exec env GOMAXPROCS=$(( g > 0 ? g : 1 )) A=1 'B=it'\''s' /bin/asyncmb rank '--data=x y'`
	if got != want {
		t.Fatalf("\n got %s\nwant %s", got, want)
	}
}
