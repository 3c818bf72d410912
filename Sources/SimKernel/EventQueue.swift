//===----------------------------------------------------------------------===//
// meshsim — SimKernel
//===----------------------------------------------------------------------===//

public import SimCore

/// The future-event set of one simulation: a 4-ary min-heap ordered by (time, insertion sequence).
///
/// Simultaneous events run first-in first-out, as in SimPy, ns-3 and OMNeT++, which makes every run with the same
/// inputs replay the same order. Time is integer nanoseconds. `Event` is the model's own payload (an enum of small
/// integers in the mesh model), stored inline, so scheduling allocates nothing once the heap has grown to its working
/// size. A queue is single-threaded by design: one per replication. Its heap is a `Slab`, so copies of a queue
/// share their pending events: never copy a queue to fork a simulation.
///
/// Cancellation is lazy: `cancel(_:)` records the token and the entry is dropped when it reaches the top.
public struct EventQueue<Event> {
    /// A handle to a scheduled event, for cancellation.
    public struct Token: Hashable, Sendable {
        /// The event's insertion sequence number, unique within the queue.
        public let sequence: UInt64

        @inlinable init(sequence: UInt64) { self.sequence = sequence }
    }

    @usableFromInline
    struct Entry {
        @usableFromInline var time: Int64
        @usableFromInline var sequence: UInt64
        @usableFromInline var event: Event
        /// The lane the entry waits in, or -1 for one scheduled at an arbitrary time.
        @usableFromInline var lane: Int32

        @inlinable init(time: Int64, sequence: UInt64, event: Event, lane: Int32 = -1) {
            self.time = time
            self.sequence = sequence
            self.event = event
            self.lane = lane
        }

        @inlinable func precedes(_ other: Entry) -> Bool {
            time < other.time || (time == other.time && sequence < other.sequence)
        }
    }

    /// The heap, in a slab: sifting writes entries in place with no copy-on-write check per write.
    @usableFromInline var heap = Slab<Entry>(capacity: 64)
    @usableFromInline var nextSequence: UInt64 = 0
    /// Events scheduled after one constant delay each (a call edge's timeout, say) come due in the order they were
    /// scheduled: each lane is a FIFO, and only its earliest event sits in the heap. Tens of thousands of pending
    /// timeouts then cost the heap nothing (the large-mesh benchmark, docs/performance.md).
    @usableFromInline var lanes = Slab<(delay: Int64, fifo: Ring<Entry>)>(capacity: 8)
    /// Events waiting in lanes behind their lane's earliest.
    @usableFromInline var laneWaiting = 0
    @usableFromInline var cancelled: Set<UInt64> = []

    @usableFromInline var _now: SimInstant = .zero
    @usableFromInline var _eventsProcessed: UInt64 = 0

    /// The time of the event being handled (or of the last one handled).
    @inlinable public var now: SimInstant { _now }
    /// How many events have been popped and handed to the model.
    @inlinable public var eventsProcessed: UInt64 { _eventsProcessed }

    /// Creates an empty queue at time zero.
    public init() {}

    /// Creates an empty queue with room for `capacity` pending events.
    public init(reservingCapacity capacity: Int) {
        heap = Slab(capacity: capacity)
    }

    /// The number of pending events, cancelled ones included until they are dropped.
    @inlinable public var count: Int { heap.count + laneWaiting }

    /// Whether no event is pending.
    @inlinable public var isEmpty: Bool { heap.isEmpty }

    /// The bytes the queue's storage holds (its capacity, not only the pending events).
    public var storageBytes: Int {
        lanes.reduce(heap.capacity * MemoryLayout<Entry>.stride) { $0 + $1.fifo.storageBytes }
    }

    /// The time of the earliest pending event, if any.
    @inlinable public var nextTime: SimInstant? { heap.first.map { SimInstant(nanoseconds: $0.time) } }

    /// Schedules `event` at `time`, which must not be earlier than `now`.
    ///
    /// - Complexity: O(log n).
    @inlinable @discardableResult
    public mutating func schedule(_ event: Event, at time: SimInstant) -> Token {
        precondition(time >= now, "an event cannot be scheduled in the past")
        let sequence = nextSequence
        nextSequence &+= 1
        heap.append(Entry(time: time.nanoseconds, sequence: sequence, event: event))
        siftUp(heap.count - 1)
        return Token(sequence: sequence)
    }

    /// Schedules `event` after `delay` from now.
    ///
    /// - Complexity: O(log n).
    @inlinable @discardableResult
    public mutating func schedule(_ event: Event, after delay: SimDuration) -> Token {
        schedule(event, at: now + delay)
    }

    /// The lane for events scheduled after `delay`, made on first use; pass it to ``schedule(_:inLane:)``.
    ///
    /// - Complexity: O(lanes).
    public mutating func lane(forDelay delay: SimDuration) -> Int {
        precondition(delay >= .zero, "a lane's delay cannot be negative")
        if let index = lanes.firstIndex(where: { $0.delay == delay.nanoseconds }) { return index }
        lanes.append((delay.nanoseconds, Ring(capacity: 64)))
        return lanes.count - 1
    }

    /// Schedules `event` after its lane's delay. The order of events is exactly as ``schedule(_:at:)`` would make
    /// it (time, then scheduling order), but the event waits in the lane's FIFO until the ones before it are due.
    ///
    /// - Complexity: O(1) when the lane already holds an event, O(log n) otherwise.
    @inlinable @discardableResult
    public mutating func schedule(_ event: Event, inLane lane: Int) -> Token {
        let sequence = nextSequence
        nextSequence &+= 1
        let entry = Entry(
            time: now.nanoseconds &+ lanes[lane].delay,
            sequence: sequence,
            event: event,
            lane: Int32(lane)
        )
        let fifo = lanes[lane].fifo
        fifo.append(entry)
        if fifo.count == 1 {
            heap.append(entry)
            siftUp(heap.count - 1)
        } else {
            laneWaiting += 1
        }
        return Token(sequence: sequence)
    }

    /// Cancels a pending event; cancelling one that already ran or was cancelled does nothing.
    ///
    /// - Complexity: O(1); the entry is dropped when it reaches the top of the heap.
    public mutating func cancel(_ token: Token) {
        guard token.sequence < nextSequence else { return }
        cancelled.insert(token.sequence)
    }

    /// Removes and returns the earliest pending event if it is due no later than `limit`, advancing `now` to its time.
    ///
    /// Returns `nil`, leaving the event pending, when the queue is empty or the next event is after `limit`.
    ///
    /// - Complexity: O(log n).
    @inlinable
    public mutating func popNext(notAfter limit: SimInstant = .distantFuture) -> Event? {
        while let top = heap.first {
            if top.time > limit.nanoseconds { return nil }
            let entry = removeTop()
            if !cancelled.isEmpty, cancelled.remove(entry.sequence) != nil { continue }
            _now = SimInstant(nanoseconds: entry.time)
            _eventsProcessed &+= 1
            return entry.event
        }
        return nil
    }

    /// Moves `now` forward to `time` without handling an event (used to end a run at its horizon).
    public mutating func advance(to time: SimInstant) {
        if time > _now { _now = time }
    }

    /// Runs events in order until the queue is empty or the next event is after `limit`, calling `handle` for each.
    ///
    /// `handle` may schedule and cancel events through the queue it is given. Returns the number of events handled.
    @inlinable @discardableResult
    public mutating func run(until limit: SimInstant = .distantFuture, _ handle: (inout EventQueue, Event) -> Void)
        -> UInt64
    {
        var handled: UInt64 = 0
        while let event = popNext(notAfter: limit) {
            handle(&self, event)
            handled += 1
        }
        if limit != .distantFuture { advance(to: limit) }
        return handled
    }

    // MARK: - Heap

    @inlinable
    mutating func removeTop() -> Entry {
        let top = heap[0]
        if top.lane >= 0 {
            // The lane's earliest leaves; the next of the lane, if any, takes its place in the heap.
            let fifo = lanes[Int(top.lane)].fifo
            _ = fifo.removeFirst()
            if let next = fifo.first {
                laneWaiting -= 1
                heap[0] = next
                siftDown(0)
                return top
            }
        }
        let last = heap.popLast()!
        guard !heap.isEmpty else { return last }
        heap[0] = last
        siftDown(0)
        return top
    }

    /// Children per node. A 4-ary heap is half as deep as a binary one and finds a node's children in one or two
    /// cache lines, so it stays fast when a million events are pending (the hold benchmark, docs/performance.md).
    @usableFromInline static var arity: Int { 4 }

    @inlinable
    mutating func siftUp(_ start: Int) {
        var child = start
        let item = heap[child]
        while child > 0 {
            let parent = (child - 1) / Self.arity
            if !item.precedes(heap[parent]) { break }
            heap[child] = heap[parent]
            child = parent
        }
        heap[child] = item
    }

    @inlinable
    mutating func siftDown(_ start: Int) {
        let count = heap.count
        var parent = start
        let item = heap[parent]
        while true {
            let first = Self.arity * parent + 1
            if first >= count { break }
            // The earliest of up to `arity` children.
            var child = first
            let end = min(first + Self.arity, count)
            var next = first + 1
            while next < end {
                if heap[next].precedes(heap[child]) { child = next }
                next += 1
            }
            if !heap[child].precedes(item) { break }
            heap[parent] = heap[child]
            parent = child
        }
        heap[parent] = item
    }
}
