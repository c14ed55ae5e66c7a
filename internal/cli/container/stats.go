package container

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/berth-dev/berth/internal/cli/command"
	"github.com/berth-dev/berth/internal/cli/format"
	"github.com/docker/go-units"
	ctypes "github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"
	"github.com/spf13/cobra"
)

const defaultStatsFormat = "table {{.ID}}\t{{.Name}}\t{{.CPUPerc}}\t{{.MemUsage}}\t{{.MemPerc}}\t{{.NetIO}}\t{{.BlockIO}}\t{{.PIDs}}"

var statsHeader = format.Header{
	"Container": "CONTAINER", "ID": "CONTAINER ID", "Name": "NAME", "CPUPerc": "CPU %", "MemUsage": "MEM USAGE / LIMIT",
	"MemPerc": "MEM %", "NetIO": "NET I/O", "BlockIO": "BLOCK I/O", "PIDs": "PIDS",
}

type statsOptions struct {
	all, noStream, noTrunc bool
	format                 string
}

func newStatsCommand(cli *command.Cli) *cobra.Command {
	var o statsOptions
	cmd := &cobra.Command{
		Use:   "stats [OPTIONS] [CONTAINER...]",
		Short: "Display a live stream of container(s) resource usage statistics",
		Args:  cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if !o.noStream {
				return errors.New("berth stats supports only --no-stream")
			}
			return runStats(cmd.Context(), cli, args, o)
		},
		Annotations:           map[string]string{"aliases": "berth container stats, berth stats"},
		DisableFlagsInUseLine: true,
	}
	f := cmd.Flags()
	f.BoolVarP(&o.all, "all", "a", false, "Show all containers (default shows just running)")
	f.BoolVar(&o.noStream, "no-stream", false, "Disable streaming stats and only pull the first result")
	f.BoolVar(&o.noTrunc, "no-trunc", false, "Do not truncate output")
	f.StringVar(&o.format, "format", "", format.TableHelp)
	return cmd
}

// statsRow is one container's usage, computed like docker from one sample
// that carries the previous CPU reading.
type statsRow struct {
	container, name, id         string
	cpu, mem, memLimit, memPerc float64
	rx, tx, blkRead, blkWrite   float64
	pids                        uint64
	invalid, trunc              bool
}

func runStats(ctx context.Context, cli *command.Cli, args []string, o statsOptions) error {
	c := cli.Client()
	refs := args
	if len(refs) == 0 {
		res, err := c.ContainerList(ctx, client.ContainerListOptions{All: o.all})
		if err != nil {
			return err
		}
		for _, s := range res.Items {
			refs = append(refs, s.ID)
		}
	}
	rows := make([]*statsRow, 0, len(refs))
	var errs []error
	for _, ref := range refs {
		row, err := sample(ctx, c, ref)
		if err != nil {
			if len(args) > 0 {
				errs = append(errs, err)
				continue
			}
			row = &statsRow{container: ref, id: ref, invalid: true}
		}
		row.trunc = !o.noTrunc
		rows = append(rows, row)
	}
	if len(errs) > 0 {
		// Like docker: a named container's failure replaces the table.
		return errors.Join(errs...)
	}
	f := format.Format(o.format)
	if o.format == "" || o.format == format.TableKey {
		f = defaultStatsFormat
	}
	return format.Write(cli.Out(), f, statsHeader, rows)
}

func sample(ctx context.Context, c *client.Client, ref string) (*statsRow, error) {
	res, err := c.ContainerStats(ctx, ref, client.ContainerStatsOptions{IncludePreviousSample: true})
	if err != nil {
		return nil, err
	}
	defer res.Body.Close()
	var s ctypes.StatsResponse
	if err := json.NewDecoder(res.Body).Decode(&s); err != nil {
		return nil, err
	}
	r := &statsRow{container: ref, name: s.Name, id: s.ID}
	r.cpu = cpuPercent(s.PreCPUStats, s.CPUStats)
	r.mem = memUsage(s.MemoryStats)
	r.memLimit = float64(s.MemoryStats.Limit)
	if r.memLimit != 0 {
		r.memPerc = r.mem / r.memLimit * 100
	}
	for _, n := range s.Networks {
		r.rx += float64(n.RxBytes)
		r.tx += float64(n.TxBytes)
	}
	for _, b := range s.BlkioStats.IoServiceBytesRecursive {
		switch {
		case strings.HasPrefix(strings.ToLower(b.Op), "r"):
			r.blkRead += float64(b.Value)
		case strings.HasPrefix(strings.ToLower(b.Op), "w"):
			r.blkWrite += float64(b.Value)
		}
	}
	r.pids = s.PidsStats.Current
	return r, nil
}

func cpuPercent(prev, cur ctypes.CPUStats) float64 {
	cpuDelta := float64(cur.CPUUsage.TotalUsage) - float64(prev.CPUUsage.TotalUsage)
	sysDelta := float64(cur.SystemUsage) - float64(prev.SystemUsage)
	cpus := float64(cur.OnlineCPUs)
	if cpus == 0 {
		cpus = float64(len(cur.CPUUsage.PercpuUsage))
	}
	if sysDelta > 0 && cpuDelta > 0 {
		return cpuDelta / sysDelta * cpus * 100
	}
	return 0
}

// memUsage is the usage without the page cache (inactive files).
func memUsage(m ctypes.MemoryStats) float64 {
	if v, ok := m.Stats["total_inactive_file"]; ok && v < m.Usage {
		return float64(m.Usage - v)
	}
	if v := m.Stats["inactive_file"]; v < m.Usage {
		return float64(m.Usage - v)
	}
	return float64(m.Usage)
}

func (r *statsRow) MarshalJSON() ([]byte, error) { return format.MarshalMethods(r) }

// Container is the name or ID as given.
func (r *statsRow) Container() string { return r.container }

// Name is the container name.
func (r *statsRow) Name() string {
	if n := strings.TrimPrefix(r.name, "/"); n != "" {
		return n
	}
	return "--"
}

// ID is the container ID.
func (r *statsRow) ID() string {
	if r.trunc {
		return format.TruncateID(r.id)
	}
	return r.id
}

func percent(v float64) string { return strconv.FormatFloat(v, 'f', 2, 64) + "%" }

// CPUPerc is the CPU use in percent of one CPU.
func (r *statsRow) CPUPerc() string {
	if r.invalid {
		return "--"
	}
	return percent(r.cpu)
}

// MemUsage is the memory use and limit.
func (r *statsRow) MemUsage() string {
	if r.invalid {
		return "-- / --"
	}
	return units.BytesSize(r.mem) + " / " + units.BytesSize(r.memLimit)
}

// MemPerc is the memory use in percent of the limit.
func (r *statsRow) MemPerc() string {
	if r.invalid {
		return "--"
	}
	return percent(r.memPerc)
}

// NetIO is the received and sent bytes.
func (r *statsRow) NetIO() string {
	if r.invalid {
		return "--"
	}
	return units.HumanSizeWithPrecision(r.rx, 3) + " / " + units.HumanSizeWithPrecision(r.tx, 3)
}

// BlockIO is the bytes read and written.
func (r *statsRow) BlockIO() string {
	if r.invalid {
		return "--"
	}
	return units.HumanSizeWithPrecision(r.blkRead, 3) + " / " + units.HumanSizeWithPrecision(r.blkWrite, 3)
}

// PIDs is the number of processes.
func (r *statsRow) PIDs() string {
	if r.invalid {
		return "--"
	}
	return fmt.Sprint(r.pids)
}
