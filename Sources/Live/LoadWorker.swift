//===----------------------------------------------------------------------===//
// meshsim — Live
//===----------------------------------------------------------------------===//

import DequeModule
import NIOCore
import NIOPosix
import Reports
import SharedModel
import SimRandom
import Spec

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

/// The load generator's work on one event loop: its share of the schedule, its connections, its histograms.
///
/// Everything here runs on `loop` (the class is confined to it, hence `@unchecked Sendable`): pacing timer,
/// connection state machine and recording share one thread, with no locks and no hops. The plan is global: every
/// loop runs the one arrival generator (the simulator's, with the simulated client's stream keys) and loop j of L
/// sends arrivals j, j + L, j + 2L, … of it, so the intended times are the simulated client's whatever the number
/// of loops.
final class LoadWorker: @unchecked Sendable {
    enum Phase { case preparing, running, draining, done }

    let index: Int
    let loopCount: Int
    let loop: any EventLoop
    let configuration: LoadConfiguration
    let address: SocketAddress
    /// The pre-encoded request.
    let request: ByteBuffer
    private let random: RandomStream
    private let minConnections: Int
    private let maxConnections: Int
    private let maxInFlight: Int

    private var phase = Phase.preparing
    private var t0: UInt64 = 0
    /// The arrival plan (open loop).
    private var generator: ArrivalGenerator?
    /// The index of the next planned arrival in the global plan.
    private var arrivalIndex = 0
    private var nextIntended: UInt64?

    private var connections: [ObjectIdentifier: LoadConnection] = [:]
    private var idle: [LoadConnection] = []
    private var connecting = 0
    private var busy = 0
    private var backlog = Deque<UInt64>()

    private var window: LoadStats
    private var windowIndex = 0
    private var finished: [LoadWindow] = []
    private(set) var total: LoadStats
    private(set) var counts = ConnectionCounts()
    private(set) var unfinished = 0
    private var readyPromise: EventLoopPromise<Void>?
    private var pendingInitial = 0
    let done: EventLoopPromise<Void>

    init(
        index: Int,
        loopCount: Int,
        loop: any EventLoop,
        configuration: LoadConfiguration,
        address: SocketAddress,
        request: ByteBuffer
    ) {
        self.index = index
        self.loopCount = loopCount
        self.loop = loop
        self.configuration = configuration
        self.address = address
        self.request = request
        self.random = RandomStream(seed: configuration.seed, replication: 0, key: "load/\(index)")
        if case .open(let schedule) = configuration.mode {
            let keys = ArrivalGenerator.streamKeys(client: configuration.client)
            generator = ArrivalGenerator(
                schedule: schedule,
                end: configuration.duration,
                arrivals: RandomStream(seed: configuration.seed, replication: 0, key: keys.arrivals),
                thinning: RandomStream(seed: configuration.seed, replication: 0, key: keys.thinning)
            )
        }
        func share(_ n: Int) -> Int { n / loopCount + (index < n % loopCount ? 1 : 0) }
        minConnections = share(configuration.connections)
        maxConnections = max(1, share(configuration.maxConnections))
        maxInFlight = max(1, share(configuration.maxInFlight))
        window = LoadStats(resolution: .coarse)
        total = LoadStats(resolution: .fine)
        done = loop.makePromise()
    }

    /// Whether the run and its drain are over on this loop.
    var isDone: Bool { phase == .done }

    private var isOpenLoop: Bool {
        if case .open = configuration.mode { return true }
        return false
    }

    /// Opens the initial connections; the future completes when every attempt has succeeded or failed.
    func prepare() -> EventLoopFuture<Void> {
        let promise = loop.makePromise(of: Void.self)
        readyPromise = promise
        pendingInitial = minConnections
        if minConnections == 0 {
            promise.succeed()
        } else {
            for _ in 0..<minConnections { connect() }
        }
        return promise.futureResult
    }

    /// Starts the schedule at `start` (uptime ns), the same instant on every loop.
    func begin(at start: UInt64) {
        t0 = start
        phase = .running
        if isOpenLoop {
            advance()
            schedulePacing()
        } else {
            let ready = idle
            idle.removeAll()
            for connection in ready { connectionReady(connection, fresh: false) }
        }
        scheduleSweep()
    }

    // MARK: Pacing

    /// Computes the next intended time of this loop's share of the plan.
    ///
    /// - Complexity: O(loops) generator steps per arrival of this loop.
    private func advance() {
        while generator != nil {
            guard let t = generator!.next() else { break }
            let k = arrivalIndex
            arrivalIndex += 1
            // This generator's share of the global plan, then this loop's share of that.
            let shards = configuration.shardCount
            if k % shards == configuration.shardIndex && (k / shards) % loopCount == index {
                nextIntended = t0 + UInt64(t)
                return
            }
        }
        nextIntended = nil
    }

    private func schedulePacing() {
        guard let next = nextIntended else {
            phase = .draining
            return
        }
        _ = try? loop.scheduleCallback(at: .uptimeNanoseconds(next), handler: PaceTick(worker: self))
    }

    /// Sends every arrival whose intended time has come, then re-arms the timer.
    ///
    /// - Complexity: O(arrivals due), no allocation when a connection is idle.
    fileprivate func pace() {
        guard phase == .running else { return }
        let now = NIODeadline.now().uptimeNanoseconds
        rollWindows(now: now)
        while let t = nextIntended, t <= now {
            arrive(intended: t, now: now)
            advance()
        }
        schedulePacing()
    }

    private func isCounted(_ intended: UInt64) -> Bool {
        let offset = Int64(bitPattern: intended &- t0)
        return offset >= configuration.warmup && offset < configuration.duration
    }

    private func arrive(intended: UInt64, now: UInt64) {
        window.arrivals += 1
        let counted = isCounted(intended)
        if counted { total.arrivals += 1 }
        if busy + backlog.count >= maxInFlight {
            settle(intended: intended, now: now, outcome: .rejected, error: .dropped, sent: false)
        } else if let connection = idle.popLast() {
            write(connection, intended: intended, now: now)
        } else {
            backlog.append(intended)
            grow()
        }
    }

    private func write(_ connection: LoadConnection, intended: UInt64, now: UInt64) {
        busy += 1
        let lag = Int64(bitPattern: now &- intended)
        // The time series needs only the count of sends; the lag histogram is kept for the summary.
        window.sent += 1
        if isCounted(intended) { total.send(lag: lag) }
        connection.send(intended: intended, now: now)
    }

    /// Opens another connection when requests wait and the pool may grow.
    ///
    /// At most ``maxConnecting`` connects are in progress at once: opening a connection costs far more than waiting
    /// tens of microseconds for a busy one, and unbounded growth after a short stall feeds on itself.
    private func grow() {
        if connections.count + connecting < maxConnections && connecting < min(backlog.count, Self.maxConnecting) {
            connect()
        }
    }

    /// Connects in progress at once per loop while requests wait.
    static let maxConnecting = 4

    // MARK: Connections

    private func connect() {
        connecting += 1
        let timeout = TimeAmount.nanoseconds(min(configuration.timeout, 10_000_000_000))
        ClientBootstrap(group: loop)
            .connectTimeout(timeout)
            .channelInitializer { [self] channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(LoadConnection(worker: self))
                }
            }
            .connect(to: address)
            .whenFailure { [self] error in connectFailed(error) }
    }

    private func connectFailed(_ error: any Error) {
        connecting -= 1
        counts.failed += 1
        let kind = LoadWorker.classify(error)
        let now = NIODeadline.now().uptimeNanoseconds
        if phase == .preparing {
            initialAttemptDone()
            return
        }
        // A request that waited for this connection was never sent: rejected, with no latency.
        if let intended = backlog.popFirst() {
            settle(intended: intended, now: now, outcome: .rejected, error: kind, sent: false)
        } else if !isOpenLoop && phase == .running && now < t0 + UInt64(configuration.duration) {
            // A closed-loop user's request failed to connect: it counts, and the user tries again shortly.
            window.arrivals += 1
            if isCounted(now) { total.arrivals += 1 }
            settle(intended: now, now: now, outcome: .rejected, error: kind, sent: false)
            loop.scheduleTask(in: .milliseconds(10)) { [self] in if phase == .running { connect() } }
        }
        if isOpenLoop { grow() }
    }

    private func initialAttemptDone() {
        pendingInitial -= 1
        if pendingInitial == 0 {
            readyPromise?.succeed()
            readyPromise = nil
        }
    }

    /// A connection is ready for a request: freshly opened, or its answer arrived and it stays open.
    func connectionReady(_ connection: LoadConnection, fresh: Bool, now knownNow: UInt64? = nil) {
        if fresh {
            connecting -= 1
            counts.opened += 1
            connections[ObjectIdentifier(connection)] = connection
            counts.peak = max(counts.peak, connections.count)
            if phase == .preparing {
                idle.append(connection)
                initialAttemptDone()
                return
            }
        }
        let now = knownNow ?? NIODeadline.now().uptimeNanoseconds
        if let intended = backlog.popFirst() {
            write(connection, intended: intended, now: now)
        } else if !isOpenLoop && phase == .running && now < t0 + UInt64(configuration.duration) {
            window.arrivals += 1
            if isCounted(now) { total.arrivals += 1 }
            write(connection, intended: now, now: now)
        } else if phase == .done {
            connection.close()
        } else {
            idle.append(connection)
        }
    }

    /// An answer arrived on `connection`.
    func answered(_ connection: LoadConnection, status: Int, keepAlive: Bool) {
        busy -= 1
        let now = NIODeadline.now().uptimeNanoseconds
        let service = Int64(bitPattern: now &- connection.sentAt)
        if isCounted(connection.intended) { total.serve(service) }
        switch status {
        case 200..<400:
            settle(intended: connection.intended, now: now, outcome: .ok, error: nil)
        case 504:
            // A proxy's gateway timeout: the proxy enforced the scenario's timeout, as the simulated client does.
            settle(intended: connection.intended, now: now, outcome: .timedOut, error: .status5xx)
        case 503, 429:
            settle(
                intended: connection.intended,
                now: now,
                outcome: .rejected,
                error: status == 503 ? .status5xx : .status4xx
            )
        case 500...:
            settle(intended: connection.intended, now: now, outcome: .failed, error: .status5xx)
        default:
            settle(intended: connection.intended, now: now, outcome: .failed, error: .status4xx)
        }
        guard keepAlive else { return }
        if !isOpenLoop, let thinkTime = configuration.thinkTime {
            // A closed-loop user thinks between an answer and its next request.
            let pause = thinkTime.sample(using: random)
            if pause > 0 {
                _ = try? loop.scheduleCallback(
                    at: .uptimeNanoseconds(now &+ UInt64(pause)),
                    handler: ThinkTick(worker: self, connection: connection)
                )
                return
            }
        }
        connectionReady(connection, fresh: false, now: now)
    }

    /// A closed-loop user's think time is over: it sends again if its connection is still open.
    fileprivate func thinkOver(_ connection: LoadConnection) {
        guard connections[ObjectIdentifier(connection)] != nil, phase != .done, !connection.busy else { return }
        connectionReady(connection, fresh: false)
    }

    /// A connection closed (by the server, by an error, or by us).
    func connectionClosed(_ connection: LoadConnection, hadRequest: Bool, error: LoadErrorKind) {
        let id = ObjectIdentifier(connection)
        let now = NIODeadline.now().uptimeNanoseconds
        if connection.established == false {
            return
        }
        guard connections.removeValue(forKey: id) != nil, phase != .done else { return }
        if let i = idle.firstIndex(where: { $0 === connection }) { idle.remove(at: i) }
        if hadRequest {
            busy -= 1
            settle(intended: connection.intended, now: now, outcome: error.outcome, error: error)
        }
        guard phase == .running || phase == .draining else { return }
        if !connection.closedByUs { counts.closedByPeer += 1 }
        if connections.count + connecting < minConnections || backlog.count > connecting {
            counts.reconnects += 1
            connect()
        }
    }

    /// Records a finished request in the current window, and in the summary when it is counted.
    ///
    /// A request that was never `sent` (dropped at the in-flight cap, or with no connection to go on) has no
    /// latency: it is counted with its outcome but kept out of the latency histograms.
    /// - Complexity: O(1), no allocation.
    private func settle(
        intended: UInt64,
        now: UInt64,
        outcome: RequestOutcome,
        error: LoadErrorKind?,
        sent: Bool = true
    ) {
        rollWindows(now: now)
        let latency = Int64(bitPattern: now &- intended)
        window.finish(latency: latency, outcome: outcome, error: error, sent: sent)
        if isCounted(intended) { total.finish(latency: latency, outcome: outcome, error: error, sent: sent) }
    }

    // MARK: Windows, timeouts, drain

    private func rollWindows(now: UInt64) {
        guard phase != .preparing, now >= t0 else { return }
        let current = Int((now - t0) / UInt64(configuration.window))
        while windowIndex < current {
            finished.append(
                LoadWindow(
                    index: windowIndex,
                    stats: window,
                    inFlight: busy + backlog.count,
                    waiting: backlog.count,
                    connections: connections.count
                )
            )
            window = LoadStats(resolution: .coarse)
            windowIndex += 1
        }
    }

    /// The windows completed since the last call.
    func takeWindows() -> [LoadWindow] {
        defer { finished.removeAll(keepingCapacity: true) }
        return finished
    }

    private func scheduleSweep() {
        _ = try? loop.scheduleCallback(in: .milliseconds(5), handler: SweepTick(worker: self))
    }

    /// Times out overdue requests, rolls windows, and ends the run once drained.
    fileprivate func sweep() {
        guard phase != .done else { return }
        let now = NIODeadline.now().uptimeNanoseconds
        rollWindows(now: now)
        let timeout = UInt64(configuration.timeout)
        while let first = backlog.first, now &- first >= timeout {
            // Never sent: it waited for a connection past the timeout. Rejected, with no latency.
            backlog.removeFirst()
            settle(intended: first, now: now, outcome: .rejected, error: .timeout, sent: false)
        }
        if busy > 0 {
            for connection in connections.values where connection.busy && now &- connection.intended >= timeout {
                busy -= 1
                settle(intended: connection.intended, now: now, outcome: .timedOut, error: .timeout)
                connection.abandon()
            }
        }
        let end = t0 + UInt64(configuration.duration)
        if phase == .running && !isOpenLoop && now >= end { phase = .draining }
        if phase == .draining {
            // Every loop runs to the end of the schedule (its windows count even when it had no arrivals left),
            // then drains.
            if (now >= end && busy + backlog.count == 0) || now >= end + UInt64(configuration.drain) {
                finish(now: now)
                return
            }
        }
        scheduleSweep()
    }

    private func finish(now: UInt64) {
        // Whatever is still outstanding is unfinished: no outcome, no latency.
        for connection in connections.values where connection.busy && isCounted(connection.intended) {
            unfinished += 1
        }
        for intended in backlog where isCounted(intended) { unfinished += 1 }
        backlog.removeAll()
        busy = 0
        rollWindows(now: now)
        finished.append(
            LoadWindow(
                index: windowIndex,
                stats: window,
                inFlight: unfinished,
                waiting: 0,
                connections: connections.count
            )
        )
        window = LoadStats(resolution: .coarse)
        phase = .done
        // abandon(): a late answer (one that runs to the close) must not be counted after the run.
        for connection in connections.values { connection.abandon() }
        idle.removeAll()
        done.succeed()
    }
}

/// The pacing timer of one loop.
private struct PaceTick: NIOScheduledCallbackHandler, @unchecked Sendable {
    let worker: LoadWorker
    func handleScheduledCallback(eventLoop: some EventLoop) { worker.pace() }
}

/// The end of a closed-loop user's think time.
private struct ThinkTick: NIOScheduledCallbackHandler, @unchecked Sendable {
    let worker: LoadWorker
    let connection: LoadConnection
    func handleScheduledCallback(eventLoop: some EventLoop) { worker.thinkOver(connection) }
}

/// The 5 ms housekeeping timer of one loop.
private struct SweepTick: NIOScheduledCallbackHandler, @unchecked Sendable {
    let worker: LoadWorker
    func handleScheduledCallback(eventLoop: some EventLoop) { worker.sweep() }
}
