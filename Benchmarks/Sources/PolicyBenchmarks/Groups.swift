// Benchmarks beyond the policy modules: the kernel's event queue, the retry calls, the HTTP parsers.

import LiveHTTP
import NIOCore
import Retries
import SimCore
import SimKernel

/// The event queue as the simulator uses it, in the hold model of event-list benchmarks: N events pending; each
/// call pops the earliest and schedules one more at a pseudo-random delay. N from 10 to 1,000,000, for meshsim's
/// 4-ary `EventQueue` and, side by side, a binary heap as the queue was before (`ReferenceBinaryHeap`): the cost
/// per event should stay nearly flat as N grows.
func benchmarkKernel() {
    print("Kernel: EventQueue pop + schedule (the hold model)")
    for pending in [10, 1_000, 100_000, 1_000_000] {
        var queue = EventQueue<Int32>(reservingCapacity: pending + 1)
        var reference = ReferenceBinaryHeap(capacity: pending + 1)
        var rng = SplitMix(state: 3)
        for i in 0..<pending {
            let time = Int64(rng.next() % 1_000_000)
            _ = queue.schedule(Int32(i), at: SimInstant(nanoseconds: time))
            reference.push(time: time, event: Int32(i))
        }
        let name = pending == 1_000 ? "EventQueue pop+schedule, 1000 pending" : "EventQueue hold, \(pending) pending"
        measure(name, iterations: Options.iterations) {
            let event = queue.popNext()!
            _ = queue.schedule(event, after: .nanoseconds(Int64(rng.next() % 1_000_000) + 1))
            return Int(event)
        }
        if let m = measurements.last { print("  → \(Int(1e9 / m.nanosecondsPerCall)) events per second") }
        measure("binary heap (reference) hold, \(pending) pending", iterations: Options.iterations) {
            let (time, event) = reference.pop()
            reference.push(time: time + Int64(rng.next() % 1_000_000) + 1, event: event)
            return Int(event)
        }
    }
}

/// The event queue's algorithm before it became 4-ary: a binary min-heap of (time, sequence, event), for the hold
/// benchmark to compare against in the same run.
struct ReferenceBinaryHeap {
    struct Entry {
        var time: Int64
        var sequence: UInt64
        var event: Int32
        func precedes(_ other: Entry) -> Bool {
            time < other.time || (time == other.time && sequence < other.sequence)
        }
    }

    var heap = Slab<Entry>()
    var sequence: UInt64 = 0

    init(capacity: Int) { heap = Slab(capacity: capacity) }

    mutating func push(time: Int64, event: Int32) {
        heap.append(Entry(time: time, sequence: sequence, event: event))
        sequence &+= 1
        var child = heap.count - 1
        let item = heap[child]
        while child > 0 {
            let parent = (child - 1) >> 1
            if !item.precedes(heap[parent]) { break }
            heap[child] = heap[parent]
            child = parent
        }
        heap[child] = item
    }

    mutating func pop() -> (Int64, Int32) {
        let top = heap[0]
        let last = heap.popLast()!
        if !heap.isEmpty {
            let count = heap.count
            var parent = 0
            while true {
                var child = 2 * parent + 1
                if child >= count { break }
                if child + 1 < count && heap[child + 1].precedes(heap[child]) { child += 1 }
                if !heap[child].precedes(last) { break }
                heap[parent] = heap[child]
                parent = child
            }
            heap[parent] = last
        }
        return (top.time, top.event)
    }
}

/// The retry budget's calls per request, and a backoff draw.
func benchmarkRetries() {
    print("Retries: budget per request, backoff draw")
    var budget = try! EnvoyRetryBudget()
    var step: Int64 = 0
    measure("Envoy RetryBudget start+tryRetry+finish", iterations: Options.iterations) {
        step &+= 1
        let now = SimInstant(nanoseconds: step * 100_000)
        budget.requestStarted(at: now)
        let retried = step % 10 == 0 && budget.tryRetry(at: now)
        if retried { budget.retryFinished(at: now) }
        budget.requestFinished(success: !retried, at: now)
        return retried ? 1 : 0
    }
    var backoff = try! Backoff(kind: .envoy, base: .milliseconds(25), cap: .milliseconds(250))
    var rng = SplitMix(state: 9)
    var attempt = 0
    measure("Backoff.next (Envoy, full jitter)", iterations: Options.iterations) {
        attempt = attempt % 8 + 1
        return Int(backoff.next(attempt: attempt, using: &rng).nanoseconds)
    }
}

/// The HTTP/1.1 parsers on a typical request and response, from a buffer shared with each call (no copy).
func benchmarkHTTP() {
    print("HTTP/1.1 parsers")
    let request = ByteBuffer(
        string: "GET /api/users?id=42 HTTP/1.1\r\nHost: example\r\nUser-Agent: meshsim-load\r\nAccept: */*\r\n\r\n"
    )
    var parser = HTTPRequestParser()
    measure("HTTPRequestParser.parse (GET, 3 headers)", iterations: Options.iterations) {
        var buffer = request
        return (try? parser.parse(&buffer)) != nil ? 1 : 0
    }
    var reader = HTTPHeadReader()
    measure("HTTPHeadReader.readRequestHead (proxy)", iterations: Options.iterations) {
        var buffer = request
        reader.reset()
        return (try? reader.readRequestHead(&buffer))?.map { $0.bytes.readableBytes } ?? 0
    }
    let response = ByteBuffer(
        string: "HTTP/1.1 200 OK\r\nServer: meshsim\r\nContent-Type: text/plain\r\nContent-Length: 3\r\n\r\nok\n"
    )
    var responseParser = HTTPResponseParser()
    measure("HTTPResponseParser.parse (200, 3 headers, body)", iterations: Options.iterations) {
        var buffer = response
        return (try? responseParser.parse(&buffer)) != nil ? 1 : 0
    }
}
