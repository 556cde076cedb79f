package queue_test

import (
	"fmt"
	"log/slog"
	"os"

	"github.com/outpost-iot/outpost/brokercore/msg"
	"github.com/outpost-iot/outpost/storeforward/queue"
)

// A lane is a durable FIFO: append, read from a cursor, acknowledge. The
// same database is the msg.Store the broker keeps its state in.
func Example() {
	dir, _ := os.MkdirTemp("", "queue-example")
	defer os.RemoveAll(dir)
	db, err := queue.Open(dir, queue.Options{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer db.Close()

	for _, rec := range []string{"first", "second", "third"} {
		if err := db.AppendSync("p0", []byte(rec)); err != nil { // durable when it returns
			fmt.Println(err)
			return
		}
	}
	recs, _ := db.Read("p0", 0, 2)
	for _, r := range recs {
		fmt.Println(r.Seq, string(r.Value))
	}
	db.Ack("p0", recs[0].Seq)
	fmt.Println("depth", db.Stat("p0").Depth)

	msg.CommitSync(db, []msg.Op{{Key: []byte("r/site/status"), Value: []byte("online")}})
	db.Scan([]byte("r/"), func(k, v []byte) error {
		fmt.Printf("%s=%s\n", k, v)
		return nil
	})
	// Output:
	// 1 first
	// 2 second
	// depth 2
	// r/site/status=online
}
