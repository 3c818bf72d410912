// Benchmarks beyond the policy modules: the kernel's event queue, the retry calls, the HTTP parsers.

import LiveHTTP
import NIOCore
import Retries
import SimCore
import SimKernel

/// The event queue as the simulator uses it: 1,000 pending events; each call pops the earliest and schedules one
/// more at a pseudo-random delay (the hold model of event-list benchmarks).
func benchmarkKernel() {
    print("Kernel: EventQueue pop + schedule (1,000 pending)")
    var queue = EventQueue<Int32>(reservingCapacity: 2_048)
    var rng = SplitMix(state: 3)
    for i in 0..<1_000 { _ = queue.schedule(Int32(i), at: SimInstant(nanoseconds: Int64(rng.next() % 1_000_000))) }
    measure("EventQueue pop+schedule, 1000 pending", iterations: Options.iterations) {
        let event = queue.popNext()!
        _ = queue.schedule(event, after: .nanoseconds(Int64(rng.next() % 1_000_000) + 1))
        return Int(event)
    }
    if let m = measurements.last, m.name.hasPrefix("EventQueue") {
        print("  → \(Int(1e9 / m.nanosecondsPerCall)) events per second")
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
