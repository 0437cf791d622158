package vmstore

import (
	"container/list"
	"sync"
)

// partCache keeps recently used MIME structures (immutable once stored:
// keyed by content hash), so FETCH BODYSTRUCTURE/ENVELOPE/BODY[section]
// do not decode them again.
type partCache struct {
	mu    sync.Mutex
	max   int
	ll    *list.List
	items map[string]*list.Element
}

type partEntry struct {
	key  string
	part *Part
}

func newPartCache(max int) *partCache {
	return &partCache{max: max, ll: list.New(), items: map[string]*list.Element{}}
}

func (c *partCache) get(key []byte) *Part {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.items[string(key)]; ok {
		c.ll.MoveToFront(e)
		return e.Value.(*partEntry).part
	}
	return nil
}

func (c *partCache) put(key []byte, p *Part) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.items[string(key)]; ok {
		c.ll.MoveToFront(e)
		return
	}
	c.items[string(key)] = c.ll.PushFront(&partEntry{string(key), p})
	for c.ll.Len() > c.max {
		e := c.ll.Back()
		c.ll.Remove(e)
		delete(c.items, e.Value.(*partEntry).key)
	}
}
