// Package cache is sqlcached's two-tier result cache: L1 in process
// (ristretto, bounded by bytes) and L2 in Redis, shared by every replica. It
// knows nothing of SQL: it stores opaque payloads under 128-bit keys the
// caller computes.
//
// # Reading
//
// Everything goes through one function, Group.Get, as groupcache's
// Group.Get with its Getter:
//
//	L1 ──fresh──> answer (the stored *Entry itself: no copy, no decoding)
//	 │ miss or stale
//	 v
//	L2 (one pipelined round trip: the entry and its generations)
//	 │──fresh──> put in L1, answer
//	 │ miss, stale, invalidated, slow or down
//	 v
//	stale within StaleTTL? ──> answer it, refresh once in the background
//	 │ no
//	 v
//	singleflight(key) ──> look in L1 again ──> fill ──> L1 now, L2 queued
//
// Freshness belongs to the request, not the entry: an entry records when it
// was filled, and a Get judges its age against its own TTL, StaleTTL and
// StaleIfError. An entry lives in L1 and Redis for the largest window of the
// request that stored it, or for its Keep: the longest any rule may use it.
//
// The fill runs once per key for every Get waiting at the same time, on a
// context detached from the callers' cancellation. Each waiter selects on
// its own context: one that gives up returns at once, and the answer still
// lands in the cache. When the fill fails, a Get serves an entry younger
// than its StaleIfError with the error beside it.
//
// Redis being slow or down is never an error. Every call is bounded by
// L2Config.Timeout and counted as a miss when it fails; after
// BreakerFailures consecutive failures the Group stops calling Redis for
// BreakerCooldown, then lets one probe through. Writes to Redis leave the
// caller's path: a bounded queue served by L2Config.Writers goroutines,
// dropping (and counting) what does not fit.
//
// An outage is logged twice, not once per call (see package
// internal/incident): a warning with Redis's error at the first failure,
// and a line when calls have succeeded again for a second, saying how long
// it lasted and how many reads went without Redis, writes to it were
// dropped and invalidations were not shared at once; at most one reminder
// a minute in between. An invalidation Redis does not take returns
// ErrInvalidationPending, which callers need not log.
//
// # The envelope
//
// An entry is encoded once, with a version byte first (Entry.Encode,
// Decode): key, created time, row count, tables, labels, the Redis
// generations it was filled under, and the payload last. In Redis the
// envelope follows a codec byte and is compressed with zstd above
// L2Config.CompressAbove; decompression is bounded by MaxEntryBytes. A value
// of an unknown version or codec, or one that does not decode, is a miss.
// Keys are namespaced and versioned: "<ns>:v1:e:<hex key>".
//
// # Invalidation and generations
//
// InvalidateTables, InvalidateLabel and InvalidateAll work by generation
// numbers, in process and across processes, so that a fill that started
// before an invalidation is never stored after it.
//
// In process, each table ("t:<table>") and label ("l:<name>=<value>") has a
// generation, and InvalidateAll moves an epoch. A fill reads the generations
// of its request's names before it starts; its store into L1 compares them
// under the lock the invalidation takes, and is skipped if any moved. An
// index from names to keys, kept in step with ristretto's evictions and
// rejections, lets an invalidation delete the L1 entries it concerns.
//
// In Redis, each name has a counter ("<ns>:v1:g:<name>", and "all"), moved
// by INCR on invalidation. A Get reads the counters of its names in the
// same round trip as the entry; a fill records them in its entry, read
// before it started. A writer compares them with the current ones before
// its SET and skips the write if they moved; since an invalidation can still
// land between that check and the SET, every L2 reader compares the entry's
// recorded counters with the current ones and treats a difference as a
// miss. Invalidated entries are therefore never served, and are left to
// expire rather than deleted: invalidation is O(names), never a scan. The
// counters live MaxTTL plus an hour, longer than any entry that could have
// read their earlier value, so that an expired counter never makes an old
// entry valid again.
//
// Other processes' L1s hear of an invalidation on the pub/sub channel
// "<ns>:v1:invalidate" and apply it as their own. Pub/sub delivers at most
// once, so a process drops all of its L1 whenever its subscription is
// re-established. An invalidation that cannot reach Redis still applies
// locally and is returned as an error; the Group then stops reading and
// writing Redis entries, whose staleness it cannot rule out, and retries the
// invalidation every second until Redis takes it.
//
// A Sentinel failover can lose invalidations: the former master takes
// writes until the sentinels demote it, some seconds later, and drops them
// as it resynchronises from the new one; a subscription left on it hears
// nothing more. A Group in sentinel mode therefore follows the master
// itself (go-redis's failover client, which follows it through a sentinel
// of its own and leaves subscriptions behind, is not used): subscribed to
// "+switch-master" on one sentinel at a time, asking it for the master
// whenever that subscription is confirmed or answers a ping, it sends its
// reads, writes, invalidations and subscription to the master it was last
// told of. When the master switches, the Group drops all of its L1, closes
// its connections to the former master, subscribes on the new one, and
// there moves the "all" counter and tells the other processes, as
// InvalidateAll does (pending and retried if Redis does not take it). Every
// entry written before the switch then reads as invalidated, in every
// process: a cold cache after a failover is the price of never serving an
// answer whose invalidation was lost. Only an answer invalidated through a
// process that has not yet heard of the switch can still be served by those
// that have, until it hears: normally a matter of milliseconds.
//
// # Sizes
//
// Nothing is unbounded: L1 bytes, entry size (a fill returning ErrTooLarge,
// or an entry over MaxEntryBytes, makes the key answer ErrTooLarge for
// TooLargeTTL so that callers stream it themselves), the write queue, the
// background refreshes, the remembered too-large keys, the L1 index, the
// pending invalidations.
package cache
