package main

import (
	"bufio"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// descendants returns pid and all its descendant processes.
func descendants(pid int) []int {
	children := map[int][]int{}
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...: comm may hold spaces; split after ')'.
		s := string(b)
		i := strings.LastIndexByte(s, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(s[i+1:])
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
