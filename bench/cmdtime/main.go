// Command cmdtime runs commands alternately, in a rotating order, and
// reports for each the median wall time, CPU time (user + system) and page
// faults of its process, with the wall and CPU ratios to the first command.
// docs/benchmarks.md's "Where the time goes" comes from it:
//
//	go run ./bench/cmdtime [-n 300] [-reset FILE] -- CMD ARG... [-- CMD ARG...]
//
// -reset FILE writes FILE's first content back before every run, untimed (a
// create rewrites its bundle's config.json). Output goes to /dev/null; a
// command that fails stops it.
package main

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strings"
	"syscall"
	"time"
)

type command struct {
	args              []string
	wall, cpu, faults []float64
}

func main() {
	n := flag.Int("n", 300, "runs of each command")
	reset := flag.String("reset", "", "a file to restore before every run")
	flag.Parse()
	var cmds []*command
	for _, a := range flag.Args() {
		if a == "--" || len(cmds) == 0 {
			cmds = append(cmds, &command{})
		}
		if a != "--" {
			cmds[len(cmds)-1].args = append(cmds[len(cmds)-1].args, a)
		}
	}
	cmds = slices.DeleteFunc(cmds, func(c *command) bool { return len(c.args) == 0 })
	if len(cmds) == 0 {
		fmt.Fprintln(os.Stderr, "usage: cmdtime [-n N] [-reset FILE] -- CMD ARG... [-- CMD ARG...]")
		os.Exit(2)
	}
	var original []byte
	if *reset != "" {
		var err error
		if original, err = os.ReadFile(*reset); err != nil {
			fmt.Fprintln(os.Stderr, "cmdtime:", err)
			os.Exit(1)
		}
	}
	for i := range *n {
		for k := range cmds {
			c := cmds[(i+k)%len(cmds)]
			if original != nil {
				if err := os.WriteFile(*reset, original, 0o644); err != nil {
					fmt.Fprintln(os.Stderr, "cmdtime:", err)
					os.Exit(1)
				}
			}
			cmd := exec.Command(c.args[0], c.args[1:]...)
			t0 := time.Now()
			if err := cmd.Run(); err != nil {
				fmt.Fprintf(os.Stderr, "cmdtime: %s: %v\n", strings.Join(c.args, " "), err)
				os.Exit(1)
			}
			wall := time.Since(t0)
			ru := cmd.ProcessState.SysUsage().(*syscall.Rusage)
			cpu := time.Duration(syscall.TimevalToNsec(ru.Utime) + syscall.TimevalToNsec(ru.Stime))
			c.wall = append(c.wall, float64(wall.Microseconds())/1000)
			c.cpu = append(c.cpu, float64(cpu.Microseconds())/1000)
			c.faults = append(c.faults, float64(ru.Minflt+ru.Majflt))
		}
	}
	median := func(v []float64) float64 {
		slices.Sort(v)
		return v[len(v)/2]
	}
	fmt.Printf("medians of %d runs each, alternated\n%-8s %-8s %-7s %-6s %-6s %s\n", *n, "wall ms", "CPU ms", "faults", "wall/1", "CPU/1", "command")
	w0, c0 := median(cmds[0].wall), median(cmds[0].cpu)
	for _, c := range cmds {
		w, u := median(c.wall), median(c.cpu)
		fmt.Printf("%-8.2f %-8.2f %-7.0f %-6.2f %-6.2f %s\n", w, u, median(c.faults), w/w0, u/c0, strings.Join(c.args, " "))
	}
}
