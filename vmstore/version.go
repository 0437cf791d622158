package vmstore

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/dgraph-io/badger/v4"
)

// The store's format version and its migrations.
//
// A store records the version of its format under V/format. A store
// without that record is either new (no key at all: it gets the current
// version) or was written before versions existed (version 1). Open
// refuses a store of a newer version than this build knows, and brings an
// older one forward by running, in order, every registered migration above
// its version. Each migration is recorded (V/migration/<version>) in the
// same transaction that raises V/format, once it has finished; a process
// killed in the middle of one leaves the version where it was, so the next
// Open runs that migration again from its start. Migrations must therefore
// be idempotent: running one again over its own partial work must finish
// it, never apply a change twice.
//
// Backups carry the version (backup.go); Restore refuses a newer one and
// migrates an older one after loading it.

// Migration brings a store from Version-1 to Version.
type Migration struct {
	Version int
	Name    string
	// Run does the work on the open store (every Store method works). It
	// must be idempotent (see above). It may commit in as many
	// transactions as it needs.
	Run func(*Store) error
}

// migrations is the registry, in increasing Version without gaps; the last
// one's Version is the format this build writes. Add a migration by
// appending {next version, name, func}.
var migrations = []Migration{
	{Version: 2, Name: "first-run marker kept in the store", Run: migrateFirstRunMarker},
	{Version: 3, Name: "accounts get a never-reused id", Run: assignAccountIDs},
	// Nothing to convert: existing contents stay in chunks and are read
	// from there. The version keeps an older build, which would not find
	// the contents of blob files, from opening the store.
	{Version: 4, Name: "large contents may be kept in blob files", Run: func(*Store) error { return nil }},
}

// legacyFormat is the version of a store written before V/format existed.
const legacyFormat = 1

// FormatVersion is the store format this build reads and writes.
func FormatVersion() int {
	if len(migrations) == 0 {
		return legacyFormat
	}
	return migrations[len(migrations)-1].Version
}

// ErrNewerFormat: the store or backup was written by a newer Lemonvox.
var ErrNewerFormat = errors.New("vmstore: data of a newer format version")

const (
	kVersion       = "V/"
	keyFormat      = "V/format"
	keyInitialized = "V/initialized"
	kMigration     = "V/migration/"
)

func migrationKey(v int) []byte { return binary.BigEndian.AppendUint32([]byte(kMigration), uint32(v)) }

type formatRecord struct {
	Version int       `json:"version"`
	Written time.Time `json:"written"`
}

// MigrationRecord tells when a migration ran.
type MigrationRecord struct {
	Version int       `json:"version"`
	Name    string    `json:"name"`
	Done    time.Time `json:"done"`
}

// readFormat returns the store's format version; a store without the
// record is new (empty: it is stamped with the current version) or legacy.
func readFormat(db *badger.DB, now time.Time) (int, error) {
	var rec formatRecord
	found, empty := false, false
	err := db.View(func(txn *badger.Txn) error {
		err := getJSON(txn, []byte(keyFormat), &rec)
		if err == nil {
			found = true
			return nil
		}
		if !errors.Is(err, ErrNotFound) {
			return err
		}
		it := txn.NewIterator(badger.IteratorOptions{})
		defer it.Close()
		it.Rewind()
		empty = !it.Valid()
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("vmstore: reading the format version: %w", err)
	}
	switch {
	case found:
		if rec.Version < legacyFormat {
			return 0, fmt.Errorf("vmstore: format version record %d is invalid", rec.Version)
		}
		return rec.Version, nil
	case empty:
		v := FormatVersion()
		return v, writeFormat(db, v, now)
	}
	return legacyFormat, nil
}

// writeFormat stamps a new store at Open, before its commit timestamps are
// set up (Badger runs in managed mode: readts.go): one past the highest.
func writeFormat(db *badger.DB, v int, now time.Time) error {
	b, _ := json.Marshal(formatRecord{Version: v, Written: now.UTC()})
	ts := db.MaxVersion()
	txn := db.NewTransactionAt(ts, true)
	defer txn.Discard()
	if err := txn.Set([]byte(keyFormat), b); err != nil {
		return err
	}
	return txn.CommitAt(ts+1, nil)
}

func newerFormatError(what string, v int) error {
	return fmt.Errorf("%w: %s has format version %d, this build of Lemonvox reads versions up to %d; run a newer release (or restore a backup made by this one)",
		ErrNewerFormat, what, v, FormatVersion())
}

// migrate runs the migrations above version from, each recorded when done.
func (s *Store) migrate(from int) error {
	for _, m := range migrations {
		if m.Version <= from {
			continue
		}
		start := time.Now()
		s.log.Info("vmstore: migrating the store", "to", m.Version, "migration", m.Name)
		if err := m.Run(s); err != nil {
			return fmt.Errorf("vmstore: migration %d (%s): %w", m.Version, m.Name, err)
		}
		now := s.now().UTC()
		rec, _ := json.Marshal(MigrationRecord{Version: m.Version, Name: m.Name, Done: now})
		fr, _ := json.Marshal(formatRecord{Version: m.Version, Written: now})
		err := s.blindUpdate(func(txn *badger.Txn) error {
			if err := txn.Set(migrationKey(m.Version), rec); err != nil {
				return err
			}
			return txn.Set([]byte(keyFormat), fr)
		})
		if err != nil {
			return fmt.Errorf("vmstore: recording migration %d: %w", m.Version, err)
		}
		s.format = m.Version
		s.log.Info("vmstore: migration done", "version", m.Version, "migration", m.Name, "took", time.Since(start))
	}
	return nil
}

// Format returns the store's format version.
func (s *Store) Format() int { return s.format }

// Migrations lists the migrations this store has run, oldest first.
func (s *Store) Migrations() ([]MigrationRecord, error) {
	var out []MigrationRecord
	err := s.view(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte(kMigration), PrefetchValues: true})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			var r MigrationRecord
			if err := it.Item().Value(func(b []byte) error { return json.Unmarshal(b, &r) }); err != nil {
				return err
			}
			out = append(out, r)
		}
		return nil
	})
	return out, err
}

// Initialized tells whether the store has been through its first start
// (the demo subscriber, if any, was created then). The mark is part of the
// store, so backups carry it.
func (s *Store) Initialized() (bool, error) {
	found := false
	err := s.view(func(txn *badger.Txn) error {
		_, err := txn.Get([]byte(keyInitialized))
		if errors.Is(err, badger.ErrKeyNotFound) {
			return nil
		}
		found = err == nil
		return err
	})
	return found, err
}

// MarkInitialized records that the store has been through its first start.
func (s *Store) MarkInitialized() error {
	b, _ := json.Marshal(map[string]time.Time{"at": s.now().UTC()})
	return s.blindUpdate(func(txn *badger.Txn) error { return txn.Set([]byte(keyInitialized), b) })
}

// HasAccounts tells whether any account exists.
func (s *Store) HasAccounts() (bool, error) {
	found := false
	err := s.view(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte(kAccount)})
		defer it.Close()
		it.Rewind()
		found = it.Valid()
		return nil
	})
	return found, err
}

// migrateFirstRunMarker (version 2): the first-run mark moved from a file
// of the data directory into the store. A store that holds accounts has
// been through its first start.
func migrateFirstRunMarker(s *Store) error {
	has, err := s.HasAccounts()
	if err != nil || !has {
		return err
	}
	return s.MarkInitialized()
}
