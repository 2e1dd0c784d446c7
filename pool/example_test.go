package pool_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/csv"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/tarnkappe/tarnkappe/pool"
)

// A whole round in one process: two members, the two aggregators and the
// collector. In a pool each step runs at another party and the byte slices
// travel as files (see the tarnkappe pool command).
func Example() {
	dir, _ := os.MkdirTemp("", "pool-example")
	defer os.RemoveAll(dir)
	cfg, _, err := pool.Init(dir, pool.InitOptions{Pool: "demo", Members: []string{"oem-a", "oem-b"},
		Leader: "authority", Helper: "trustee", Collector: "analyst",
		Release: pool.ReleaseSpec{Subject: "vin", By: []string{"seg"}, MaxPartitions: 1, MaxPerPartition: 2, MaxRows: 1000, Epsilon: 1,
			Aggregates: []pool.AggregateSpec{{Kind: "count"}, {Kind: "mean", Column: "temp", Lower: 0, Upper: 100}}},
		Partitions: [][]string{{"a"}, {"b"}, {"c"}}, Budget: pool.BudgetSpec{Period: "2026-03", Epsilon: 3}})
	if err != nil {
		panic(err)
	}
	key := func(id string) *pool.Key { k, _ := pool.LoadKey(filepath.Join(dir, "keys", id+".key")); return k }
	var ups [2][]pool.Upload
	for _, m := range []string{"oem-a", "oem-b"} {
		rd := csv.NewInferringReader(strings.NewReader("vin,seg,temp\n"+m+"-1,a,40\n"+m+"-2,b,55\n"), csv.WithHeader(true))
		part, err := cfg.ReaderPartial(context.Background(), rd, memory.DefaultAllocator) // bounded per vehicle
		if err != nil {
			panic(err)
		}
		c, err := pool.Contribute(cfg, key(m), part) // encrypted shares + signed manifest
		if err != nil {
			panic(err)
		}
		for agg := range 2 {
			ups[agg] = append(ups[agg], pool.Upload{Name: m, Manifest: c.Manifest, Share: c.Uploads[agg]})
		}
	}
	aggs := []string{"authority", "trustee"}
	var ledgers [2]*pool.Ledger // each aggregator's own: budget and nonces
	var preps [2]*pool.Prepared
	for agg, id := range aggs {
		ledgers[agg], _ = pool.OpenLedger(filepath.Join(dir, "state", id))
		defer ledgers[agg].Close()
		opts := pool.PrepareOptions{Ledger: ledgers[agg]}
		if agg == 1 {
			opts.Peer = preps[0].File // the helper prepares after the leader
		}
		if preps[agg], err = pool.Prepare(cfg, key(id), ups[agg], opts); err != nil {
			panic(err)
		}
	}
	var shares [2]*pool.Share
	for agg, id := range aggs {
		shares[agg], _ = pool.Aggregate(cfg, key(id), pool.AggregateOptions{Leader: preps[0].File, Helper: preps[1].File, State: preps[agg].State, Ledger: ledgers[agg]})
	}
	res, err := pool.Collect(cfg, key("analyst"), shares[0].File, shares[1].File, pool.CollectOptions{})
	if err != nil {
		panic(err)
	}
	defer res.Release()
	fmt.Println(res.Record.NumRows(), "partitions from", res.Report.Members.Counted, "ε left:", res.Report.EpsilonLeft)
	fmt.Println(res.Record.Schema().Field(1).Name, res.Record.Column(0).(*array.String).Value(0))
	// Output:
	// 3 partitions from [oem-a oem-b] ε left: 2
	// count a
}
