package bench

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
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

// procCPU reads utime+stime of process pid from /proc/PID/stat (proc(5)),
// in clock ticks: it includes threads that have exited.
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

// taskCPU reads the time on CPU of each live thread of process pid, in
// nanoseconds, from the first field of /proc/PID/task/TID/schedstat. It is
// exact where /proc/PID/stat counts 10 ms ticks (2,000 connections at
// 50 µs each are 10 ticks), but it misses threads that have exited; nil
// when the kernel has no schedstat.
func taskCPU(pid int) map[int]time.Duration {
	dir := fmt.Sprintf("/proc/%d/task", pid)
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil
	}
	m := make(map[int]time.Duration, len(ents))
	for _, e := range ents {
		tid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(dir + "/" + e.Name() + "/schedstat")
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				continue // the thread exited while the directory was read
			}
			return nil
		}
		f := strings.Fields(string(b))
		if len(f) == 0 {
			return nil
		}
		ns, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			return nil
		}
		m[tid] = time.Duration(ns)
	}
	return m
}

// cpuSample is a process's CPU time at one moment, read both ways.
type cpuSample struct {
	ticks time.Duration         // /proc/PID/stat
	tasks map[int]time.Duration // per thread, exact; nil: unavailable
}

func sampleCPU(pid int) (cpuSample, error) {
	t, err := procCPU(pid)
	if err != nil {
		return cpuSample{}, err
	}
	return cpuSample{ticks: t, tasks: taskCPU(pid)}, nil
}

// cpuBetween is the CPU time used between two samples: the exact
// per-thread sum when every thread of the first sample is still alive in
// the second (threads started in between count whole), else the ticks.
func cpuBetween(a, b cpuSample) time.Duration {
	if a.tasks == nil || b.tasks == nil {
		return b.ticks - a.ticks
	}
	var d time.Duration
	for tid, t := range b.tasks {
		d += t - a.tasks[tid]
	}
	for tid := range a.tasks {
		if _, ok := b.tasks[tid]; !ok {
			return b.ticks - a.ticks // a thread exited: its time is only in the ticks
		}
	}
	return d
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
	broker0   cpuSample
	brokerErr error
}

func startMeter(pid int) *meter {
	m := &meter{pid: pid, t0: time.Now(), self0: selfCPU()}
	if pid > 0 {
		m.broker0, m.brokerErr = sampleCPU(pid)
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
		b, err := sampleCPU(m.pid)
		if err != nil {
			return p, err
		}
		p.Broker = cpuBetween(m.broker0, b)
	}
	return p, nil
}
