package feedback

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// Position is how far the poller has read: the last updated_at it processed and the ids it
// processed at exactly that instant (so a re-query from that instant skips them).
type Position struct {
	UpdatedAt time.Time `json:"updated_at"`
	IDs       []int64   `json:"ids,omitempty"`
	// RemovalCursor is where the removal check continues in the fingerprint store ("" starts a
	// new round).
	RemovalCursor string `json:"removal_cursor,omitempty"`
}

// Cursor stores the poll Position durably. Load returns the zero Position when none is stored.
// Implementations are safe for concurrent use.
type Cursor interface {
	Load(ctx context.Context) (Position, error)
	Save(ctx context.Context, pos Position) error
}

// MemoryCursor is an in-process Cursor (tests, single run).
type MemoryCursor struct {
	mu  sync.Mutex
	pos Position
}

// Load implements Cursor.
func (m *MemoryCursor) Load(context.Context) (Position, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	p := m.pos
	p.IDs = append([]int64(nil), p.IDs...)
	return p, nil
}

// Save implements Cursor.
func (m *MemoryCursor) Save(_ context.Context, pos Position) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	pos.IDs = append([]int64(nil), pos.IDs...)
	m.pos = pos
	return nil
}

// RedisCursorKey is the default Redis key of RedisCursor.
const RedisCursorKey = "vigil:sink:feedback:cursor:v1"

// RedisCursor stores the Position as JSON under one Redis key.
type RedisCursor struct {
	rdb redis.UniversalClient
	key string
}

// NewRedisCursor returns a RedisCursor; key "" means RedisCursorKey.
func NewRedisCursor(rdb redis.UniversalClient, key string) *RedisCursor {
	if key == "" {
		key = RedisCursorKey
	}
	return &RedisCursor{rdb: rdb, key: key}
}

// Load implements Cursor.
func (c *RedisCursor) Load(ctx context.Context) (Position, error) {
	b, err := c.rdb.Get(ctx, c.key).Bytes()
	if errors.Is(err, redis.Nil) {
		return Position{}, nil
	}
	if err != nil {
		return Position{}, fmt.Errorf("load feedback cursor: %w", err)
	}
	var p Position
	if err := json.Unmarshal(b, &p); err != nil {
		return Position{}, fmt.Errorf("decode feedback cursor: %w", err)
	}
	return p, nil
}

// Save implements Cursor.
func (c *RedisCursor) Save(ctx context.Context, pos Position) error {
	b, err := json.Marshal(pos)
	if err != nil {
		return fmt.Errorf("encode feedback cursor: %w", err)
	}
	if err := c.rdb.Set(ctx, c.key, b, 0).Err(); err != nil {
		return fmt.Errorf("save feedback cursor: %w", err)
	}
	return nil
}

var (
	_ Cursor = (*MemoryCursor)(nil)
	_ Cursor = (*RedisCursor)(nil)
)
