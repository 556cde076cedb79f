//go:build !linux

package brokercore

import (
	"syscall"
	"time"
)

// poller is Linux-only (epoll); elsewhere idle connections keep a blocked
// reader goroutine.
type poller struct{}

func newPoller(*Broker) *poller                         { return nil }
func (*poller) setSocket(*conn, syscall.RawConn, int32) {}
func (*poller) park(*conn, time.Time) bool              { return false }
func (*poller) stop(*conn)                              {}
func (*poller) forget(*conn)                            {}
func (*poller) count() int                              { return 0 }
func (*poller) run()                                    {}
func (*poller) close()                                  {}
