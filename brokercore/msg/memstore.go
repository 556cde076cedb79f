package msg

import (
	"bytes"
	"sort"
	"sync"
)

// MemStore is a Store in memory, for tests and for running with no data
// directory. It is not durable. FailNext makes the next commit fail, to test
// the paths that must survive a failed sync.
type MemStore struct {
	mu   sync.Mutex
	data map[string][]byte
	fail error
}

// NewMemStore returns an empty MemStore.
func NewMemStore() *MemStore { return &MemStore{data: make(map[string][]byte)} }

// FailNext makes the next Commit report err and apply nothing.
func (s *MemStore) FailNext(err error) {
	s.mu.Lock()
	s.fail = err
	s.mu.Unlock()
}

// Commit implements Store.
func (s *MemStore) Commit(ops []Op, done func(error)) {
	s.mu.Lock()
	if err := s.fail; err != nil {
		s.fail = nil
		s.mu.Unlock()
		done(err)
		return
	}
	for _, op := range ops {
		if op.Delete {
			delete(s.data, string(op.Key))
			continue
		}
		s.data[string(op.Key)] = append([]byte(nil), op.Value...)
	}
	s.mu.Unlock()
	done(nil)
}

// Scan implements Store.
func (s *MemStore) Scan(prefix []byte, fn func(key, value []byte) error) error {
	s.mu.Lock()
	keys := make([]string, 0, len(s.data))
	for k := range s.data {
		if bytes.HasPrefix([]byte(k), prefix) {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	vals := make([][]byte, len(keys))
	for i, k := range keys {
		vals[i] = s.data[k]
	}
	s.mu.Unlock()
	for i, k := range keys {
		if err := fn([]byte(k), vals[i]); err != nil {
			return err
		}
	}
	return nil
}

// Len returns the number of keys stored.
func (s *MemStore) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.data)
}

var _ Store = (*MemStore)(nil)
