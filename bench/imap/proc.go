package main

import (
	"bufio"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// procStat returns the fields of /proc/<pid>/stat after the command name
// (which may hold spaces, so the line is split after its last ')'): f[0]
// is the state, f[1] the parent pid, f[11] and f[12] utime and stime,
// f[13] and f[14] cutime and cstime. Nil when the process is gone.
func procStat(pid int) []string {
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return nil
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return nil
	}
	return strings.Fields(s[i+1:])
}

// descendants returns pid and all its descendant processes.
func descendants(pid int) []int {
	children := map[int][]int{}
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		f := procStat(p)
		if len(f) < 2 {
			continue
		}
		pp, _ := strconv.Atoi(f[1])
		children[pp] = append(children[pp], p)
	}
	out := []int{pid}
	for i := 0; i < len(out); i++ {
		out = append(out, children[out[i]]...)
	}
	return out
}

// pssKiB sums the proportional set size of the processes (shared pages
// counted once over all of them).
func pssKiB(pids []int) int64 {
	var total int64
	for _, p := range pids {
		f, err := os.Open(filepath.Join("/proc", strconv.Itoa(p), "smaps_rollup"))
		if err != nil {
			continue
		}
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if strings.HasPrefix(sc.Text(), "Pss:") {
				v, _ := strconv.ParseInt(strings.Fields(sc.Text())[1], 10, 64)
				total += v
				break
			}
		}
		f.Close()
	}
	return total
}
