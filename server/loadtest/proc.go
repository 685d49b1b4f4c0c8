package loadtest

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// clockTicks is USER_HZ, the unit of utime and stime in /proc/<pid>/stat.
// It is 100 on every Linux architecture Go supports.
const clockTicks = 100

// ProcSample is one reading of a process's CPU time and memory.
type ProcSample struct {
	At  time.Time
	CPU time.Duration // user + system time since the process started
	RSS int64         // resident set size in bytes
}

// ReadProc reads the CPU time and resident memory of process pid from
// /proc/<pid>/stat and /proc/<pid>/status (Linux only).
func ReadProc(pid int) (ProcSample, error) {
	at := time.Now()
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return ProcSample{}, fmt.Errorf("read cpu time of pid %d: %w", pid, err)
	}
	cpu, err := parseStatCPU(stat)
	if err != nil {
		return ProcSample{}, fmt.Errorf("pid %d: %w", pid, err)
	}
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return ProcSample{}, fmt.Errorf("read memory of pid %d: %w", pid, err)
	}
	rss, err := parseStatusRSS(status)
	if err != nil {
		return ProcSample{}, fmt.Errorf("pid %d: %w", pid, err)
	}
	return ProcSample{At: at, CPU: cpu, RSS: rss}, nil
}

// parseStatCPU returns utime+stime of a /proc/<pid>/stat line. The command
// name in parentheses may hold spaces, so fields are counted from the last
// ')'.
func parseStatCPU(stat []byte) (time.Duration, error) {
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 {
		return 0, fmt.Errorf("malformed /proc stat: no ')'")
	}
	// After ")": state(3) ppid(4) ... utime(14) stime(15).
	f := strings.Fields(string(stat[i+1:]))
	const utime = 14 - 3
	if len(f) <= utime+1 {
		return 0, fmt.Errorf("malformed /proc stat: %d fields", len(f))
	}
	u, err1 := strconv.ParseInt(f[utime], 10, 64)
	s, err2 := strconv.ParseInt(f[utime+1], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("malformed /proc stat: utime %q stime %q", f[utime], f[utime+1])
	}
	return time.Duration(u+s) * time.Second / clockTicks, nil
}

// parseStatusRSS returns VmRSS of /proc/<pid>/status in bytes.
func parseStatusRSS(status []byte) (int64, error) {
	for line := range strings.SplitSeq(string(status), "\n") {
		rest, ok := strings.CutPrefix(line, "VmRSS:")
		if !ok {
			continue
		}
		f := strings.Fields(rest)
		if len(f) != 2 || f[1] != "kB" {
			return 0, fmt.Errorf("malformed VmRSS line %q", line)
		}
		kb, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			return 0, fmt.Errorf("malformed VmRSS line %q", line)
		}
		return kb << 10, nil
	}
	return 0, fmt.Errorf("no VmRSS in /proc status")
}

// ProcStats is what a process used over a measurement window.
type ProcStats struct {
	PID int `json:"pid"`
	// CPUPercent is CPU time over wall time, in percent of one core (200
	// means two cores busy).
	CPUPercent float64 `json:"cpu_percent"`
	// RSSMB is the resident memory at the end of the window, RSSPeakMB the
	// highest of the samples taken during it, in MiB.
	RSSMB     float64       `json:"rss_mb"`
	RSSPeakMB float64       `json:"rss_peak_mb"`
	Window    time.Duration `json:"window_ns"`
}

// procWatch samples one process during a window.
type procWatch struct {
	pid   int
	first ProcSample
	peak  int64
}

func startWatch(pid int) (*procWatch, error) {
	s, err := ReadProc(pid)
	if err != nil {
		return nil, err
	}
	return &procWatch{pid: pid, first: s, peak: s.RSS}, nil
}

// sample records a reading for the peak.
func (w *procWatch) sample() {
	if s, err := ReadProc(w.pid); err == nil {
		w.peak = max(w.peak, s.RSS)
	}
}

// stop ends the window.
func (w *procWatch) stop() (ProcStats, error) {
	last, err := ReadProc(w.pid)
	if err != nil {
		return ProcStats{}, err
	}
	return procStats(w.pid, w.first, last, max(w.peak, last.RSS)), nil
}

func procStats(pid int, first, last ProcSample, peak int64) ProcStats {
	wall := last.At.Sub(first.At)
	st := ProcStats{PID: pid, Window: wall, RSSMB: mib(last.RSS), RSSPeakMB: mib(peak)}
	if wall > 0 {
		st.CPUPercent = float64(last.CPU-first.CPU) / float64(wall) * 100
	}
	return st
}

func mib(b int64) float64 { return float64(b*100>>20) / 100 }
