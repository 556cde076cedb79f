package main

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
	"unicode/utf8"

	"github.com/spf13/cobra"

	"github.com/outpost-iot/outpost/configs"
	"github.com/outpost-iot/outpost/storeforward"
	"github.com/outpost-iot/outpost/storeforward/queue"
)

// newQueueCmd is `outpost queue stat|peek|purge`: look into (or empty) the
// store-and-forward queue of a stopped hub.
func newQueueCmd() *cobra.Command {
	var path string
	cmd := &cobra.Command{
		Use:   "queue",
		Short: "Show, peek into or purge the store-and-forward queue",
		Long: `Inspect the durable queue of messages waiting for the cloud, in
<data_dir>/db (data_dir from -c FILE, --data-dir or OUTPOST_DATA_DIR; default
./outpost-data, as outpost run).

The database is locked while outpost runs: stop it first (systemctl stop
outpost), or look at the web console, which shows the same figures live.`,
		Args: cobra.NoArgs,
	}
	cmd.PersistentFlags().StringVarP(&path, "config", "c", "", "configuration file (YAML) naming data_dir")
	cmd.PersistentFlags().String("data-dir", "", "directory holding the database (data_dir)")

	var lane string
	var n int
	peek := &cobra.Command{
		Use:     "peek",
		Short:   "Print the oldest queued messages (topic, QoS, age, payload)",
		Example: "  outpost queue peek -n 20\n  outpost queue peek --lane p10 -c /etc/outpost/outpost.yaml",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			db, err := openQueue(cmd, path)
			if err != nil {
				return err
			}
			defer db.Close()
			return queuePeek(cmd.OutOrStdout(), db, lane, n, time.Now())
		},
	}
	peek.Flags().StringVar(&lane, "lane", "", "only this lane (p<priority>); default: every lane, highest priority first")
	peek.Flags().IntVarP(&n, "count", "n", 10, "messages to print per lane")

	var yes bool
	purge := &cobra.Command{
		Use:   "purge",
		Short: "Delete every queued message (or one lane's): they will never reach the cloud",
		Long: `Delete queued messages for good. Messages already in flight to the cloud at
QoS 2 keep their session state so that exchange can finish (the cloud holds
their packet ids).`,
		Example: "  outpost queue purge --yes\n  outpost queue purge --lane p0 --yes",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			db, err := openQueue(cmd, path)
			if err != nil {
				return err
			}
			defer db.Close()
			return queuePurge(cmd.OutOrStdout(), db, lane, yes)
		},
	}
	purge.Flags().StringVar(&lane, "lane", "", "only this lane (p<priority>); default: every lane")
	purge.Flags().BoolVarP(&yes, "yes", "y", false, "really delete (without it purge only says what it would delete)")

	cmd.AddCommand(&cobra.Command{
		Use:     "stat",
		Short:   "Print depth, size and age of each lane of the queue",
		Example: "  outpost queue stat -c /etc/outpost/outpost.yaml",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			db, err := openQueue(cmd, path)
			if err != nil {
				return err
			}
			defer db.Close()
			return queueStat(cmd.OutOrStdout(), db, time.Now())
		},
	}, peek, purge)
	return cmd
}

// openQueue opens the database of the configured data_dir, or explains
// that a running outpost holds it.
func openQueue(cmd *cobra.Command, path string) (*queue.DB, error) {
	cfg, err := configs.Load(path, cmd.Flags())
	if err != nil {
		if es, ok := err.(configs.Errors); ok {
			for _, e := range es {
				fmt.Fprintln(cmd.ErrOrStderr(), e)
			}
			return nil, exitError{code: 2}
		}
		return nil, err
	}
	dir := cfg.DataDir
	if dir == "" {
		dir = "outpost-data"
	}
	dbDir := filepath.Join(dir, "db")
	if _, err := os.Stat(dbDir); err != nil {
		return nil, fmt.Errorf("no queue database at %s (data_dir %s): %w", dbDir, dir, err)
	}
	db, err := queue.Open(dir, queue.Options{Logger: slog.New(slog.DiscardHandler), MinFreeBytes: -1})
	if err != nil {
		if locked(err) {
			pid := "?"
			if b, rerr := os.ReadFile(filepath.Join(dbDir, "LOCK")); rerr == nil {
				pid = strings.TrimSpace(string(b))
			}
			return nil, fmt.Errorf("the queue at %s is open by a running outpost (pid %s); stop it (systemctl stop outpost) or use the web console", dbDir, pid)
		}
		return nil, err
	}
	return db, nil
}

// locked reports whether err is Badger's "another process holds the lock".
func locked(err error) bool {
	return strings.Contains(strings.ToLower(err.Error()), "another process is using")
}

func queueStat(w io.Writer, db *queue.DB, now time.Time) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "LANE\tMESSAGES\tBYTES\tOLDEST\tHEAD SEQ\tNEXT SEQ\t")
	var depth, bytes int64
	var oldest time.Duration
	lanes := sortedLanes(db)
	for _, l := range lanes {
		age := laneAge(l, now)
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%d\t%d\t\n", l.Lane, l.Depth, humanBytes(l.Bytes), fmtAge(age), l.Head, l.Next)
		depth += l.Depth
		bytes += l.Bytes
		oldest = max(oldest, age)
	}
	fmt.Fprintf(tw, "total\t%d\t%s\t%s\t\t\t\n", depth, humanBytes(bytes), fmtAge(oldest))
	if err := tw.Flush(); err != nil {
		return err
	}
	if len(lanes) == 0 {
		fmt.Fprintln(w, "(no lanes: nothing was ever queued for the cloud)")
	}
	if du, err := db.DiskUsage(); err == nil {
		fmt.Fprintf(w, "database on disk: %s\n", humanBytes(du))
	}
	if n, err := storeforward.InFlight(db); err == nil && n > 0 {
		fmt.Fprintf(w, "QoS 2 messages in flight to the cloud: %d (finished on the next connection)\n", n)
	}
	return nil
}

func queuePeek(w io.Writer, db *queue.DB, lane string, n int, now time.Time) error {
	lanes := sortedLanes(db)
	if lane != "" {
		lanes = []queue.LaneStat{db.Stat(lane)}
	}
	for _, l := range lanes {
		recs, err := db.Read(l.Lane, 0, n)
		if err != nil {
			return err
		}
		fmt.Fprintf(w, "lane %s: %d queued\n", l.Lane, l.Depth)
		for _, r := range recs {
			rec, err := storeforward.DecodeRecord(r.Value)
			if err != nil {
				fmt.Fprintf(w, "  #%d  %s ago  (undecodable: %v)\n", r.Seq, fmtAge(now.Sub(r.Appended)), err)
				continue
			}
			flags := "q" + strconv.Itoa(int(rec.QoS))
			if rec.Retain {
				flags += " r"
			}
			fmt.Fprintf(w, "  #%d  %s ago  %s  %s  (%d bytes) %s\n", r.Seq, fmtAge(now.Sub(r.Appended)), rec.Topic, flags, len(rec.Payload), preview(rec.Payload))
		}
		if l.Depth > int64(len(recs)) {
			fmt.Fprintf(w, "  ... %d more\n", l.Depth-int64(len(recs)))
		}
	}
	return nil
}

func queuePurge(w io.Writer, db *queue.DB, lane string, yes bool) error {
	lanes := sortedLanes(db)
	if lane != "" {
		lanes = []queue.LaneStat{db.Stat(lane)}
	}
	var total int64
	for _, l := range lanes {
		total += l.Depth
	}
	if !yes {
		fmt.Fprintf(w, "would delete %d queued %s from %d %s; they would never reach the cloud. Add --yes to delete them.\n",
			total, plural(int(total), "message", "messages"), len(lanes), plural(len(lanes), "lane", "lanes"))
		return exitError{code: 1}
	}
	var errs []error
	for _, l := range lanes {
		if l.Depth == 0 {
			continue
		}
		if err := db.AckThrough(l.Lane, l.Next-1); err != nil {
			errs = append(errs, fmt.Errorf("purge lane %s: %w", l.Lane, err))
			continue
		}
		fmt.Fprintf(w, "lane %s: deleted %d messages\n", l.Lane, l.Depth)
	}
	return errors.Join(errs...)
}

// sortedLanes lists the lanes highest priority first, as the uplink drains them.
func sortedLanes(db *queue.DB) []queue.LaneStat {
	ls := db.Lanes()
	prio := func(name string) int {
		p, _ := strconv.Atoi(strings.TrimPrefix(name, "p"))
		return p
	}
	for i := 1; i < len(ls); i++ {
		for j := i; j > 0 && prio(ls[j].Lane) > prio(ls[j-1].Lane); j-- {
			ls[j], ls[j-1] = ls[j-1], ls[j]
		}
	}
	return ls
}

func laneAge(l queue.LaneStat, now time.Time) time.Duration {
	if l.Depth == 0 || l.Oldest.IsZero() {
		return 0
	}
	return now.Sub(l.Oldest)
}

func fmtAge(d time.Duration) string {
	switch {
	case d <= 0:
		return "-"
	case d < time.Minute:
		return d.Round(time.Second).String()
	case d < 48*time.Hour:
		return d.Round(time.Minute).String()
	}
	return fmt.Sprintf("%.1fd", d.Hours()/24)
}

func humanBytes(n int64) string {
	switch {
	case n < 1<<10:
		return fmt.Sprintf("%d B", n)
	case n < 1<<20:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	case n < 1<<30:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	}
	return fmt.Sprintf("%.2f GiB", float64(n)/(1<<30))
}

// preview shows up to 60 characters of a payload: text as is (quoted),
// binary as hex.
func preview(b []byte) string {
	const limit = 60
	cut := b
	if len(cut) > limit {
		cut = cut[:limit]
	}
	if utf8.Valid(cut) && !strings.ContainsFunc(string(cut), func(r rune) bool { return r < 0x20 && r != '\t' }) {
		s := strconv.Quote(string(cut))
		if len(b) > limit {
			s += "..."
		}
		return s
	}
	s := fmt.Sprintf("% x", cut)
	if len(b) > limit {
		s += " ..."
	}
	return s
}
