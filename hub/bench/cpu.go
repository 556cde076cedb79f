package bench

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// selfCPU is the CPU time (user+system) this process has used so far.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// clockTick is USER_HZ, the unit of utime and stime in /proc/PID/stat; it
// is 100 on every Linux architecture Go supports.
const clockTick = 10 * time.Millisecond

// procCPU reads utime+stime of process pid from /proc/PID/stat (proc(5)).
func procCPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, fmt.Errorf("broker cpu: %w", err)
	}
	// The command name (field 2) may hold spaces; fields after its ')'
	// start at field 3 (state); utime and stime are fields 14 and 15.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, fmt.Errorf("broker cpu: /proc/%d/stat: no ')'", pid)
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0, fmt.Errorf("broker cpu: /proc/%d/stat: %d fields after the name", pid, len(f))
	}
	ut, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("broker cpu: /proc/%d/stat: utime %q stime %q", pid, f[11], f[12])
	}
	return time.Duration(ut+st) * clockTick, nil
}

// procMem reads VmHWM (peak RSS) and VmRSS of process pid in KiB from
// /proc/PID/status.
func procMem(pid int) (hwm, rss int64, err error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0, fmt.Errorf("broker memory: %w", err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		v = strings.TrimSuffix(strings.TrimSpace(v), " kB")
		switch k {
		case "VmHWM":
			hwm, _ = strconv.ParseInt(v, 10, 64)
		case "VmRSS":
			rss, _ = strconv.ParseInt(v, 10, 64)
		}
	}
	return hwm, rss, nil
}

// meter measures one phase: wall time, this process's CPU and, with a
// broker pid, the broker's CPU.
type meter struct {
	pid       int
	t0        time.Time
	self0     time.Duration
	broker0   time.Duration
	brokerErr error
}

func startMeter(pid int) *meter {
	m := &meter{pid: pid, t0: time.Now(), self0: selfCPU()}
	if pid > 0 {
		m.broker0, m.brokerErr = procCPU(pid)
	}
	return m
}

// phase is what a meter measured.
type phase struct {
	Wall   time.Duration
	Self   time.Duration
	Broker time.Duration // 0 without a pid
}

func (m *meter) stop() (phase, error) {
	p := phase{Wall: time.Since(m.t0), Self: selfCPU() - m.self0}
	if m.pid > 0 {
		if m.brokerErr != nil {
			return p, m.brokerErr
		}
		b, err := procCPU(m.pid)
		if err != nil {
			return p, err
		}
		p.Broker = b - m.broker0
	}
	return p, nil
}
