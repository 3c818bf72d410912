//===----------------------------------------------------------------------===//
// meshsim — Proxy
//===----------------------------------------------------------------------===//

import Breakers
import Limiters
import LiveHTTP
import NIOCore
import NIOPosix
import Prometheus
import Retries
import SharedModel
import SimCore
import Spec

/// One client connection: reads a request head, routes it to a cluster, lets the cluster's balancer pick an endpoint,
/// passes the request to it on a pooled keep-alive connection and the response back, one request at a time.
///
/// Framing is checked on the way in both directions (RFC 9112 §6: a head with both `Content-Length` and
/// `Transfer-Encoding`, two differing lengths, a malformed chunk, obsolete line folding, a bare LF or a NUL is
/// answered 400 and the connection closed), so the proxy and the backend always agree on where a message ends.
/// Hop-by-hop headers are dropped in both directions (RFC 9110 §7.6.1) and `X-Forwarded-For` is added.
///
/// `autoRead` is off: the client is read only while the upstream can take its bytes, or while a head is awaited.
///
/// With hedging (gRFC A6) several attempts of one request may be out at once, each on its own upstream connection;
/// the first whose response head arrives with a status below 500 wins and is the only one passed to the client,
/// and the others are cancelled (their connections closed). Hedges go only once the whole request has arrived and
/// fits the replay buffer (``ProxyConfiguration/maxRetryBufferBytes``).
final class DownstreamConnection: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private enum Phase {
        /// Between requests (or just accepted), nothing buffered.
        case idle
        /// Part of a request head has arrived.
        case head
        /// The request body is passing upstream.
        case body
        /// The request has passed; the response is awaited or passing back.
        case waiting
        /// The connection is being closed.
        case closing
    }

    let loop: ProxyLoop
    private var context: ChannelHandlerContext?
    private var buffer = ByteBuffer()
    private var reader: HTTPHeadReader
    private var phase = Phase.idle
    private var processing = false
    /// The connection's one timer, while armed, and when it fires (uptime ns). It is re-armed lazily: a phase that
    /// ends before it fires only clears ``deadline``, so a keep-alive request costs no timer operation.
    private var timer: NIOScheduledCallback?
    private var timerAt: UInt64 = 0
    /// When the current phase's timeout expires (uptime ns), if one runs.
    private var deadline: UInt64?
    /// `X-Forwarded-For: <client>\r\n`.
    private var forwardedFor = ByteBuffer()

    // The current exchange.
    /// Bumped per request, so that late retry and hedge timers of an earlier one are ignored.
    private var callID = 0
    private var cluster: ClusterState?
    /// The current request's permit of the cluster's concurrency limit, if it has one.
    private var concurrencyPermit: ConcurrencyPermit?
    /// The caller's mesh identity, when the listener runs mutual TLS (set before the first request is read).
    var peer: String?
    /// The attempts of the current request that are out (more than one only when hedging), oldest first; the
    /// request body streams to the first (hedges wait for the whole body).
    private var outstanding: [ProxyAttempt] = []
    /// The attempt whose response passes to the client, once its head has arrived.
    private var forwarding: ProxyAttempt?
    /// The timer of the backoff before a retry.
    private var retryTimer: NIOScheduledCallback?
    /// The hedging delay's timer after the latest attempt.
    private var hedgeTimer: NIOScheduledCallback?
    /// The hedging delay passed while the request body was still arriving: the hedge goes once it is complete.
    private var hedgeDue = false
    private var requestBody = HTTPBodyForwarder(.none)
    private var requestComplete = false
    private var clientKeepAlive = true
    private var clientHTTP10 = false
    private var isHeadMethod = false
    private var responseStarted = false
    private var closeAfterResponse = false
    private var status = 0
    /// Attempts made for the current request (retries and hedges included).
    private var attempts = 0
    /// The current attempt is a retry that holds a place in the cluster's retry budget.
    private var retryHeld = false
    /// The request head as the backend sees it, kept for a retry.
    private var requestHead = ByteBuffer()
    /// The request body as it passed, kept for a retry while it fits ``ProxyConfiguration/maxRetryBufferBytes``.
    private var replayBody = ByteBuffer()
    /// Whether the request can be sent again, as a retry or a hedge (its body fitted the retry buffer).
    private var replayable = false
    /// The backoff of the current request's retries (its own jitter state, as each simulated call has).
    private var backoff: Backoff?
    /// The current request's deadline (retries included): the cluster's `deadline`, or sooner if the client's
    /// ``DownstreamConnection/deadlineHeader`` says so.
    private var callDeadline = Deadline.none
    /// When the request body last had bytes (uptime ns), for the body timeout.
    private var lastBodyRead: UInt64 = 0

    init(loop: ProxyLoop) {
        self.loop = loop
        reader = HTTPHeadReader(
            maxHeadBytes: loop.shared.configuration.maxHeadBytes,
            maxHeaderCount: loop.shared.configuration.maxHeaderCount
        )
    }

    private var configuration: ProxyConfiguration { loop.shared.configuration }

    /// Whether the client takes more bytes without unbounded buffering.
    var isWritable: Bool { context?.channel.isWritable ?? false }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        loop.downstream[ObjectIdentifier(self)] = self
        let client = context.channel.remoteAddress?.ipAddress ?? "unknown"
        forwardedFor = ByteBuffer(string: "X-Forwarded-For: \(client)\r\n")
        loop.shared.metrics.accepted.increment()
        armTimer(configuration.headerTimeout)
    }

    func channelActive(context: ChannelHandlerContext) {
        context.read()
        context.fireChannelActive()
    }

    func channelInactive(context: ChannelHandlerContext) {
        deadline = nil
        timer?.cancel()
        timer = nil
        loop.downstream[ObjectIdentifier(self)] = nil
        if cluster != nil {
            // The client left first: its upstream work is cancelled, the connections closed, not pooled.
            endExchange(.cancelled, closingUpstreams: true)
        }
        phase = .closing
        self.context = nil
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var incoming = unwrapInboundIn(data)
        if phase == .idle {
            phase = .head
            armTimer(configuration.headerTimeout)
        } else if phase == .body {
            lastBodyRead = NIODeadline.now().uptimeNanoseconds
        }
        if buffer.readableBytes == 0 {
            buffer = incoming
        } else {
            buffer.writeBuffer(&incoming)
        }
        process(flushing: false)
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        for attempt in outstanding { attempt.upstream?.flush() }
        readIfWanted()
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        for attempt in outstanding { attempt.upstream?.readIfWanted() }
        forwarding?.upstream?.readIfWanted()
        context.fireChannelWritabilityChanged()
    }

    /// Asks for a read when the client's bytes have somewhere to go: a head is awaited, the upstream takes the body,
    /// or (while waiting for the response) little is buffered, so that a client that leaves is noticed.
    ///
    /// - Complexity: O(1).
    func readIfWanted() {
        guard let context else { return }
        let cap = configuration.maxBufferedBytes
        let wanted: Bool
        switch phase {
        case .idle, .head: wanted = true
        case .body:
            let attempt = outstanding.first
            wanted = attempt?.upstream.map { $0.isWritable } ?? ((attempt?.outgoing.readableBytes ?? 0) < cap)
        case .waiting: wanted = buffer.readableBytes < cap
        case .closing: wanted = false
        }
        if wanted { context.read() }
    }

    // MARK: - Requests

    /// Handles the buffered bytes: heads, then body bytes, until more must arrive or a response is awaited;
    /// `flushing`: flush what was written upstream (a read flushes once at its end instead).
    ///
    /// - Complexity: O(bytes consumed).
    private func process(flushing: Bool = true) {
        guard !processing else { return }
        processing = true
        defer { processing = false }
        loop: while context != nil {
            switch phase {
            case .idle, .head:
                guard buffer.readableBytes > 0 else { break loop }
                if phase == .idle {
                    phase = .head
                    armTimer(configuration.headerTimeout)
                }
                let head: HTTPForwardHead?
                do {
                    head = try reader.readRequestHead(&buffer)
                } catch .headerTooLarge {
                    reject(.headerTooLarge)
                    return
                } catch {
                    reject(.badRequest)
                    return
                }
                guard let head else { break loop }
                cancelTimer()
                startExchange(head)
            case .body:
                let slice: ByteBuffer
                do {
                    slice = try requestBody.take(&buffer)
                } catch {
                    requestFailed()
                    return
                }
                if slice.readableBytes > 0 {
                    if let attempt = outstanding.first {
                        if let upstream = attempt.upstream {
                            upstream.write(slice)
                        } else {
                            attempt.outgoing.writeImmutableBuffer(slice)
                        }
                    }
                    if replayable {
                        if replayBody.readableBytes + slice.readableBytes <= configuration.maxRetryBufferBytes {
                            replayBody.writeImmutableBuffer(slice)
                        } else {
                            replayable = false
                            replayBody = ByteBuffer()
                        }
                    }
                }
                guard requestBody.isComplete else { break loop }
                requestComplete = true
                phase = .waiting
                cancelTimer()
                if hedgeDue {
                    // The hedging delay passed while the body was arriving: the hedge goes now that it is whole.
                    hedgeDue = false
                    sendHedge(at: loop.now())
                }
            case .waiting, .closing:
                break loop
            }
        }
        // Body bytes taken outside a read (a pipelined request started when the previous response ended) must not
        // wait for the client's next read to be flushed.
        if flushing { for attempt in outstanding { attempt.upstream?.flush() } }
        if buffer.readableBytes == 0 {
            buffer.clear()
        } else if buffer.readerIndex > 4096 {
            buffer.discardReadBytes()
        }
    }

    /// Routes and balances a request whose head has arrived, and sends it upstream.
    ///
    /// - Complexity: O(routes + head length) plus the balancer's pick; one head buffer, no strings.
    private func startExchange(_ head: HTTPForwardHead) {
        let shared = loop.shared
        let route = head.bytes.withUnsafeReadableBytes { bytes in
            let host =
                head.host.map { UnsafeRawBufferPointer(rebasing: bytes[$0]) }
                ?? UnsafeRawBufferPointer(start: nil, count: 0)
            return shared.routes.match(host: host, path: UnsafeRawBufferPointer(rebasing: bytes[head.path]))
        }
        guard let route else {
            respondLocally(.noRoute)
            return
        }
        let clusterIndex = shared.routes.cluster(route: route, using: &loop.routeRandom)
        let cluster = loop.clusters[clusterIndex]
        if let authorization = configuration.tls?.authorization, !isAuthorized(head, authorization, cluster.spec) {
            shared.metrics.authzDenials[clusterIndex].increment()
            respondLocally(.forbidden)
            return
        }
        let now = loop.now()
        guard !loop.stopping, loop.pending < configuration.maxPendingPerLoop else {
            respondLocally(.overload)
            return
        }
        // The call edge's decisions, in the simulator's order: the call (budget, rate limit), then each attempt
        // (throttle, breaker and its pool, the endpoint).
        guard cluster.admit(at: now) else {
            cluster.edge.callFinished(success: false, at: now)
            respondLocally(.rateLimited)
            return
        }
        guard let permit = cluster.acquireConcurrency(at: now) else {
            cluster.edge.callFinished(success: false, at: now)
            respondLocally(.concurrencyLimited)
            return
        }
        concurrencyPermit = permit
        loop.pending += 1
        self.cluster = cluster
        callID &+= 1
        attempts = 0
        retryHeld = false
        hedgeDue = false
        backoff = cluster.spec.policy.backoff
        requestBody = HTTPBodyForwarder(head.framing)
        requestComplete = requestBody.isComplete
        replayable = cluster.spec.policy.retries > 0 || cluster.spec.policy.hedging != nil
        replayBody = ByteBuffer()
        clientKeepAlive = head.keepAlive
        clientHTTP10 = head.isHTTP10
        isHeadMethod = head.isHeadMethod
        responseStarted = false
        closeAfterResponse = false
        status = 0
        phase = requestComplete ? .waiting : .body
        if !requestComplete {
            // The body may pause at most the body timeout between reads (one timer, re-armed lazily).
            lastBodyRead = NIODeadline.now().uptimeNanoseconds
            armTimer(configuration.bodyTimeout)
        }
        if head.expectsContinue && !requestComplete && !head.isHTTP10, let context {
            // RFC 9110 §10.1.1: the proxy answers the expectation itself (and did not pass it on), so the client
            // sends its body at once instead of waiting for a backend that may never send 100.
            context.writeAndFlush(wrapOutboundOut(LocalAnswer.continueInterim), promise: nil)
        }

        // The head as the backend sees it: the start line, the end-to-end lines, X-Forwarded-For (the deadline line
        // and the empty line are added per attempt).
        requestHead.clear()
        requestHead.reserveCapacity(head.bytes.readableBytes + forwardedFor.readableBytes)
        requestHead.writeImmutableBuffer(
            head.bytes.getSlice(at: head.startLine.lowerBound, length: head.startLine.count)!
        )
        requestHead.writeStaticString("\r\n")
        // Deadline propagation: the earlier of the cluster's `deadline` and the one the client passes on.
        callDeadline = cluster.spec.policy.deadline.map { Deadline.after($0, from: now) } ?? .none
        for line in head.forwardedLines {
            let slice = head.bytes.getSlice(at: line.lowerBound, length: line.count)!
            switch Self.deadlineMilliseconds(slice) {
            case .notDeadline:
                break
            case .milliseconds(let inherited):
                callDeadline = min(callDeadline, Deadline.after(.milliseconds(inherited), from: now))
                continue
            case .malformed:
                // A deadline the proxy cannot read is not passed on or guessed at: the request is refused.
                loop.pending -= 1
                self.cluster = nil
                cluster.edge.callFinished(success: false, at: now)
                respondLocally(.badRequest)
                return
            }
            requestHead.writeImmutableBuffer(slice)
        }
        requestHead.writeImmutableBuffer(forwardedFor)
        if callDeadline.isExpired(at: now) {
            // Nothing left of the inherited deadline: fail fast, as a simulated call does.
            attempts = 1
            lastFailure = .timeout
            finishLocally(.deadlineExpired, at: now)
            return
        }
        startAttempt(at: now)
    }

    /// Makes the next attempt of the current request (a hedge when `hedge`): the throttle and the breaker admit it,
    /// the balancer picks an endpoint, the per-try timer and the hedging timer start, and the request goes out on a
    /// pooled or new connection (a retry or a hedge sends the kept head and body again).
    ///
    /// As in the simulator, an attempt after the first is a retry unless it is a hedge (`isRetry` for the breaker's
    /// and the budget's accounting); a hedge that a policy refuses while other attempts are out is not sent, and
    /// the request waits for those.
    ///
    /// - Complexity: O(head length) plus the policies' and the balancer's costs.
    private func startAttempt(hedge: Bool = false, at now: SimInstant) {
        guard let cluster else { return }
        let shared = loop.shared
        attempts += 1
        let isRetry = attempts > 1 && !hedge
        let (admission, opened) = cluster.admitAttempt(isRetry: isRetry, at: now)
        if opened { shared.metrics.breakerOpens[cluster.index].increment() }
        let pool: PoolState
        switch admission {
        case .admitted(let place): pool = place
        case .throttled:
            finishLocally(.throttled, at: now)
            return
        case .breakerRejected:
            finishLocally(.breakerOpen, at: now)
            return
        }
        guard let endpoint = cluster.pick(at: now) else {
            if cluster.edge.breaker != nil { cluster.edge.breaker!.cancel(isRetry: isRetry, pool: pool, at: now) }
            finishLocally(.noEndpoint, at: now)
            return
        }
        if isRetry { shared.metrics.retries[cluster.index].increment() }
        if hedge { shared.metrics.hedges[cluster.index].increment() }
        cluster.attemptStarted(endpoint: endpoint, at: now)
        let backend = cluster.backendOfEndpoint[endpoint]
        let attempt = ProxyAttempt(
            endpoint: endpoint,
            backend: backend,
            pool: pool,
            isRetry: isRetry,
            isHedge: hedge,
            started: UInt64(now.nanoseconds) &+ shared.startUptime
        )
        outstanding.append(attempt)
        attempt.outgoing = requestHead
        if callDeadline != .none {
            let remaining = max(0, (callDeadline.instant.nanoseconds - now.nanoseconds) / 1_000_000)
            attempt.outgoing.writeString(Self.deadlineHeader + ": \(remaining)\r\n")
        }
        attempt.outgoing.writeStaticString("\r\n")
        if attempts > 1 { attempt.outgoing.writeImmutableBuffer(replayBody) }

        // The attempt's timeout: the cluster's per-try `timeout`, within the proxy's overall upstream timeout.
        let perTry = cluster.spec.policy.timeout
        let untilDeadline: SimDuration? =
            callDeadline == .none ? nil : .nanoseconds(max(1, callDeadline.instant.nanoseconds - now.nanoseconds))
        let attemptTimeout = [configuration.upstreamTimeout, perTry, untilDeadline].compactMap { $0 }.min()
        if let timeout = attemptTimeout, let context {
            attempt.timer = try? context.eventLoop.scheduleCallback(
                in: .nanoseconds(timeout.nanoseconds),
                handler: LoopTimer { [self] in
                    attempt.timer = nil
                    guard attempt.isOpen, let cluster = self.cluster else { return }
                    if !cluster.spec.policy.releaseOnTimeout, forwarding !== attempt, requestComplete,
                        let connection = attempt.upstream
                    {
                        // `release_on_timeout: false`: the balancer counts the attempt until the backend's answer
                        // arrives, and learns its whole latency.
                        attempt.upstream = nil
                        let orphan = OrphanedExchange(
                            cluster: cluster,
                            endpoint: attempt.endpoint,
                            started: attempt.started,
                            loop: loop
                        )
                        attemptFailed(attempt, .timeout, releasingBalancer: false)
                        connection.orphan(orphan)
                        return
                    }
                    let connection = attempt.upstream
                    attempt.upstream = nil
                    connection?.close()
                    attemptFailed(attempt, .timeout)
                }
            )
        }
        // Hedging: after the delay without an answer (and no attempt sent since), another attempt goes out.
        if let hedging = cluster.spec.policy.hedging, attempts < hedging.maxAttempts, let context {
            hedgeTimer?.cancel()
            let id = callID
            let number = attempts
            hedgeTimer = try? context.eventLoop.scheduleCallback(
                in: .nanoseconds(hedging.delay.nanoseconds),
                handler: LoopTimer { [self] in
                    hedgeTimer = nil
                    guard id == callID, cluster === self.cluster, attempts == number, forwarding == nil,
                        !outstanding.isEmpty
                    else { return }
                    if requestComplete {
                        sendHedge(at: loop.now())
                    } else {
                        hedgeDue = true
                    }
                }
            )
        }
        // The newest idle connection, unless it idled past the pool's limit (the backend may be closing it).
        let uptime = NIODeadline.now().uptimeNanoseconds
        let limit = UInt64(max(0, configuration.upstreamIdleTimeout.nanoseconds))
        let oldest = uptime > limit ? uptime - limit : 0
        while let pooled = loop.pools[backend].checkout() {
            guard pooled.idleSince >= oldest else {
                pooled.close()
                continue
            }
            shared.metrics.reused[backend].increment()
            attach(pooled, to: attempt)
            return
        }
        connect(attempt)
    }

    /// Sends a hedge of the current request if it can go again (its body whole and kept, nothing answered yet).
    private func sendHedge(at now: SimInstant) {
        guard replayable, requestComplete, !responseStarted, phase != .closing, context != nil else { return }
        startAttempt(hedge: true, at: now)
    }

    /// The request ends without an upstream answer, refused by a policy before its attempt went out: 503 if it was
    /// the first attempt; a refused retry ends the request with the last failure's answer.
    private func finishLocally(_ rejection: Rejection, at now: SimInstant) {
        guard let cluster else { return }
        if !outstanding.isEmpty {
            // A hedge refused while other attempts are out: the request waits for those.
            loop.shared.metrics.rejections[rejection.rawValue].increment()
            return
        }
        releaseRetry(at: now)
        cluster.edge.callFinished(success: false, at: now)
        loop.pending -= 1
        self.cluster = nil
        if attempts > 1 {
            loop.shared.metrics.rejections[rejection.rawValue].increment()
            answerFailure(lastFailure)
        } else {
            respondLocally(rejection)
        }
    }

    /// The request header that carries a call's remaining time, in whole milliseconds, to the next hop (and from the
    /// client, whose deadline the proxy then keeps if it is sooner than its own), as gRPC's `grpc-timeout` does.
    static let deadlineHeader = "x-meshsim-deadline-ms"

    /// What a header line (with its CRLF) says of the deadline.
    enum DeadlineLine: Equatable {
        /// Another header.
        case notDeadline
        /// `x-meshsim-deadline-ms` with a whole number of milliseconds in 0...10^9.
        case milliseconds(Int64)
        /// `x-meshsim-deadline-ms` with anything else (empty, negative, not a number, too large).
        case malformed
    }

    /// Reads a `x-meshsim-deadline-ms` line (name case-insensitive).
    static func deadlineMilliseconds(_ line: ByteBuffer) -> DeadlineLine {
        let name = deadlineHeader.utf8
        guard line.readableBytes > name.count else { return .notDeadline }
        return line.withUnsafeReadableBytes { bytes -> DeadlineLine in
            for (i, expected) in name.enumerated() {
                var byte = bytes[i]
                if byte >= 65 && byte <= 90 { byte += 32 }
                if byte != expected { return .notDeadline }
            }
            guard bytes[name.count] == UInt8(ascii: ":") else { return .notDeadline }
            var value: Int64 = 0
            var digits = 0
            for byte in bytes[(name.count + 1)...] {
                switch byte {
                case UInt8(ascii: "0")...UInt8(ascii: "9"):
                    value = value * 10 + Int64(byte - UInt8(ascii: "0"))
                    digits += 1
                    if digits > 10 { return .malformed }
                case UInt8(ascii: " "), UInt8(ascii: "\t"), UInt8(ascii: "\r"), UInt8(ascii: "\n"):
                    continue
                default:
                    return .malformed
                }
            }
            return digits > 0 && value <= 1_000_000_000 ? .milliseconds(value) : .malformed
        }
    }

    /// The failure of the last attempt, answered if no retry follows.
    private var lastFailure = AttemptOutcome.upstreamError

    /// A retry admitted by the budget has ended: its place goes back.
    private func releaseRetry(at now: SimInstant) {
        guard retryHeld, let cluster else { return }
        retryHeld = false
        cluster.edge.retryFinished(at: now)
    }

    /// The retry-policy view of a failed attempt.
    private static func failure(_ outcome: AttemptOutcome) -> AttemptFailure {
        switch outcome {
        case .response(let status): return .httpStatus(status)
        case .connectFailure: return .connectFailure
        case .upstreamError, .cancelled: return .reset
        case .timeout: return .perTryTimeout
        }
    }

    /// Attempt `attempt` failed with `outcome`: it ends (breaker, throttle, outlier detection learn it; the
    /// balancer lets go unless `releasingBalancer` is false). While other hedged attempts are out, the next hedge
    /// goes at once if `retry_on` covers the failure (``CallEdge/hedgesAfter(attemptsMade:failure:)``); when none
    /// is left, the cluster's hedging or retry policy, budget and backoff decide whether the request goes out again;
    /// otherwise the client gets the failure (502, or 504 for a timeout).
    private func attemptFailed(
        _ attempt: ProxyAttempt,
        _ outcome: AttemptOutcome,
        releasingBalancer: Bool = true
    ) {
        guard let cluster else { return }
        endAttempt(attempt, outcome, releasingBalancer: releasingBalancer)
        let now = loop.now()
        lastFailure = outcome
        if !outstanding.isEmpty && forwarding == nil {
            if cluster.edge.hedgesAfter(attemptsMade: attempts, failure: Self.failure(outcome)) { sendHedge(at: now) }
            return
        }
        releaseRetry(at: now)
        if replayable && requestComplete && !responseStarted && phase != .closing && context != nil {
            let decision = cluster.edge.afterFailure(
                attemptsMade: attempts,
                failure: Self.failure(outcome),
                deadline: callDeadline,
                backoff: &backoff,
                at: now
            )
            if follow(decision, cluster: cluster) { return }
        } else {
            // The budget still learns of the failed attempt, as the simulator's call does.
            var none: Backoff?
            _ = cluster.edge.afterFailure(
                attemptsMade: Int.max,
                failure: Self.failure(outcome),
                deadline: .none,
                backoff: &none,
                at: now
            )
        }
        endCall(success: false, at: now)
        answerFailure(outcome)
    }

    /// Follows the retry decision for a failed attempt: returns whether the request goes out again.
    private func follow(_ decision: RetryDecision, cluster: ClusterState) -> Bool {
        switch decision {
        case .retry(let wait, let holdsBudget):
            retryHeld = holdsBudget
            retryAfter(wait)
            return true
        case .hedge:
            // Every attempt failed and hedging allows more: the next hedge goes at once.
            startAttempt(hedge: true, at: loop.now())
            return true
        case .budgetDenied:
            loop.shared.metrics.retriesDenied[cluster.index].increment()
            return false
        case .finish:
            return false
        }
    }

    /// Sends the request again after `wait` (the backoff's draw).
    private func retryAfter(_ wait: SimDuration) {
        guard wait > .zero, let context else {
            startAttempt(at: loop.now())
            return
        }
        let id = callID
        retryTimer = try? context.eventLoop.scheduleCallback(
            in: .nanoseconds(wait.nanoseconds),
            handler: LoopTimer { [self] in
                retryTimer = nil
                guard id == callID, outstanding.isEmpty, cluster != nil else { return }
                startAttempt(at: loop.now())
            }
        )
    }

    /// Opens a new upstream connection for `attempt`.
    private func connect(_ attempt: ProxyAttempt) {
        guard let context else { return }
        let backend = attempt.backend
        let loop = self.loop
        let connection = UpstreamConnection(loop: loop, backend: backend)
        let clusterIndex = cluster?.index ?? 0
        loop.shared.metrics.opened[backend].increment()
        let timeout = configuration.upstreamTimeout.map { TimeAmount.nanoseconds($0.nanoseconds) } ?? .seconds(10)
        ClientBootstrap(group: context.eventLoop)
            .channelOption(.autoRead, value: false)
            .connectTimeout(timeout)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try loop.shared.addUpstreamTLS(to: channel.pipeline.syncOperations, cluster: clusterIndex)
                    try channel.pipeline.syncOperations.addHandler(connection)
                }
            }
            .connect(to: loop.shared.backendAddresses[backend])
            .whenComplete { [self] result in
                switch result {
                case .success:
                    if attempt.isOpen, attempt.upstream == nil, connection.isOpen {
                        attach(connection, to: attempt)
                    } else {
                        connection.close()
                    }
                case .failure:
                    if attempt.isOpen, attempt.upstream == nil { attemptFailed(attempt, .connectFailure) }
                }
            }
    }

    /// Sends `attempt`'s request on `connection`.
    private func attach(_ connection: UpstreamConnection, to attempt: ProxyAttempt) {
        attempt.upstream = connection
        connection.begin(for: self, requestIsHead: isHeadMethod)
        connection.write(attempt.outgoing)
        attempt.outgoing = ByteBuffer()
        connection.flush()
        readIfWanted()
    }

    /// The open attempt (or the forwarded one) carried by `connection`.
    private func attempt(on connection: UpstreamConnection) -> ProxyAttempt? {
        if let forwarding, forwarding.upstream === connection { return forwarding }
        return outstanding.first { $0.upstream === connection }
    }

    // MARK: - Responses (called by the upstream connection)

    /// A response head arrived on `connection`. A 5xx ends its attempt when the request could go again: while other
    /// hedged attempts are out it is dropped (and the next hedge may go), otherwise the retry policy decides whether
    /// the client sees it. Any other response wins: the other attempts are cancelled and it is passed on, hop-by-hop
    /// lines dropped, saying whether the connection stays open.
    ///
    /// - Complexity: O(head length), one buffer, plus O(attempts) to cancel the losers.
    func responseHead(_ head: HTTPForwardHead, from connection: UpstreamConnection) {
        guard let context, let attempt = attempt(on: connection), forwarding == nil else {
            connection.close()
            return
        }
        if head.status >= 500, replayable, requestComplete, let cluster {
            // A 5xx ends the attempt; the hedging or retry policy decides whether the client sees it or the request
            // goes out again (then this response is read and dropped, and its connection pooled).
            endAttempt(attempt, .response(status: head.status))
            let now = loop.now()
            if !outstanding.isEmpty {
                // Hedged, with other attempts out: this one failed.
                attempt.upstream = nil
                connection.orphan(OrphanedExchange(cluster: nil, endpoint: 0, started: 0, loop: loop))
                lastFailure = .response(status: head.status)
                if cluster.edge.hedgesAfter(attemptsMade: attempts, failure: .httpStatus(head.status)) {
                    sendHedge(at: now)
                }
                return
            }
            releaseRetry(at: now)
            let decision = cluster.edge.afterFailure(
                attemptsMade: attempts,
                failure: .httpStatus(head.status),
                deadline: callDeadline,
                backoff: &backoff,
                at: now
            )
            if decision.sendsAgain {
                attempt.upstream = nil
                connection.orphan(OrphanedExchange(cluster: nil, endpoint: 0, started: 0, loop: loop))
            }
            if follow(decision, cluster: cluster) { return }
        }
        forwarding = attempt
        // A hedge wins with a success, as the simulator counts it (a 5xx passed on after the last attempt is not a win).
        if attempt.isHedge, head.status < 500, let cluster { loop.shared.metrics.hedgesWon[cluster.index].increment() }
        cancelOthers(than: attempt)
        responseStarted = true
        status = head.status
        // The client's connection closes after this response when it asked so, when the response runs to the
        // upstream's close, or when its request body has not fully arrived (it cannot be told from the next request).
        closeAfterResponse = !clientKeepAlive || head.framing == .untilClose || !requestComplete || loop.stopping
        var out = ByteBuffer()
        out.reserveCapacity(head.bytes.readableBytes + 32)
        out.writeImmutableBuffer(head.bytes.getSlice(at: head.startLine.lowerBound, length: head.startLine.count)!)
        out.writeStaticString("\r\n")
        for line in head.forwardedLines {
            out.writeImmutableBuffer(head.bytes.getSlice(at: line.lowerBound, length: line.count)!)
        }
        if closeAfterResponse {
            out.writeStaticString("Connection: close\r\n")
        } else if clientHTTP10 {
            out.writeStaticString("Connection: keep-alive\r\n")
        }
        out.writeStaticString("\r\n")
        context.write(wrapOutboundOut(out), promise: nil)
    }

    /// A hedge won: the other attempts still out are cancelled (their connections closed, the balancer and the
    /// breaker let go of them as of any cancelled attempt), and no further hedge goes.
    ///
    /// - Complexity: O(attempts).
    private func cancelOthers(than winner: ProxyAttempt) {
        hedgeTimer?.cancel()
        hedgeTimer = nil
        hedgeDue = false
        guard outstanding.count > 1 else { return }
        for other in outstanding where other !== winner {
            let connection = other.upstream
            other.upstream = nil
            endAttempt(other, .cancelled)
            connection?.close()
        }
    }

    /// Response body bytes arrived: pass them on.
    ///
    /// - Complexity: O(1); the bytes are not copied.
    func responseBody(_ bytes: ByteBuffer) {
        context?.write(wrapOutboundOut(bytes), promise: nil)
    }

    /// Flushes what was written to the client.
    func flushResponse() { context?.flush() }

    /// The response ended; `reusable`: the upstream connection may carry another request.
    ///
    /// - Complexity: O(1) plus the cluster's end-of-attempt hook and any pipelined bytes.
    func responseEnded(from connection: UpstreamConnection, reusable: Bool) {
        guard let forwarding, connection === forwarding.upstream else { return }
        forwarding.upstream = nil
        endExchange(.response(status: status))
        connection.release(reusable: reusable && requestComplete)
        guard let context else { return }
        if closeAfterResponse {
            phase = .closing
            context.writeAndFlush(wrapOutboundOut(ByteBuffer())).whenComplete { [channel = context.channel] _ in
                channel.close(promise: nil)
            }
            return
        }
        context.flush()
        phase = .idle
        reader.reset()
        armTimer(configuration.idleTimeout)
        process()
        readIfWanted()
    }

    /// The upstream failed (no connection, broken, malformed, or timed out): the request goes out again if the
    /// retry policy says so; otherwise 502 or 504 if nothing was sent yet, else the client connection is closed.
    func upstreamFailed(from connection: UpstreamConnection, _ outcome: AttemptOutcome) {
        guard cluster != nil, let attempt = attempt(on: connection) else { return }
        attempt.upstream = nil
        connection.close()
        if attempt.isOpen {
            attemptFailed(attempt, outcome)
        } else {
            // A passed-on 5xx whose attempt had ended already broke mid-way: the client's connection is closed.
            endCall(success: false, at: loop.now())
            answerFailure(outcome)
        }
    }

    /// Answers a failed exchange: 502 or 504 if nothing was sent yet, else the client connection is closed.
    private func answerFailure(_ outcome: AttemptOutcome) {
        guard let context else { return }
        phase = .closing
        if responseStarted {
            context.flush()
            context.close(promise: nil)
        } else {
            let answer: LocalAnswer = outcome == .timeout ? .gatewayTimeout : .badGateway
            context.writeAndFlush(wrapOutboundOut(answer.encoded)).whenComplete { [channel = context.channel] _ in
                channel.close(promise: nil)
            }
        }
    }

    /// The request body was malformed mid-way: the upstream connection is dropped; 400 if nothing was answered yet.
    private func requestFailed() {
        if cluster != nil { endExchange(.cancelled, closingUpstreams: true) }
        if responseStarted {
            phase = .closing
            context?.close(promise: nil)
        } else {
            reject(.badRequest)
        }
    }

    /// The current request ends with `outcome`: its attempts still out and the call; `closingUpstreams`: their
    /// connections (and the passed-on one's) are closed, not pooled.
    private func endExchange(_ outcome: AttemptOutcome, closingUpstreams: Bool = false) {
        guard cluster != nil else { return }
        let attempts = outstanding
        var connections: [UpstreamConnection] = []
        if closingUpstreams {
            for attempt in attempts {
                if let connection = attempt.upstream { connections.append(connection) }
                attempt.upstream = nil
            }
            if let connection = forwarding?.upstream { connections.append(connection) }
            forwarding?.upstream = nil
        }
        for attempt in attempts { endAttempt(attempt, outcome) }
        endCall(success: !outcome.isFailure, concurrency: outcome.concurrencyOutcome, at: loop.now())
        for connection in connections { connection.close() }
    }

    /// Counts the end of `attempt` on its cluster (the balancer lets go unless `releasingBalancer` is false; the
    /// breaker, throttle and outlier detection learn the outcome) and in the metrics; a second end is ignored.
    ///
    /// - Complexity: O(attempts) to forget it, plus the cluster's end-of-attempt hook.
    private func endAttempt(_ attempt: ProxyAttempt, _ outcome: AttemptOutcome, releasingBalancer: Bool = true) {
        guard attempt.isOpen, let cluster else { return }
        attempt.isOpen = false
        if let i = outstanding.firstIndex(where: { $0 === attempt }) { outstanding.remove(at: i) }
        let now = loop.now()
        let latency = SimDuration(nanoseconds: max(0, Int64(NIODeadline.now().uptimeNanoseconds &- attempt.started)))
        let (ejections, opened) = cluster.attemptEnded(
            endpoint: attempt.endpoint,
            outcome: outcome,
            latency: latency,
            pool: attempt.pool,
            isRetry: attempt.isRetry,
            releasingBalancer: releasingBalancer,
            at: now
        )
        let metrics = loop.shared.metrics
        if ejections > 0 { metrics.ejections[cluster.index].increment(by: Int64(ejections)) }
        if opened { metrics.breakerOpens[cluster.index].increment() }
        metrics.requests[cluster.index][attempt.endpoint][outcome.label].increment()
        if case .response = outcome {
            metrics.latency[cluster.index][attempt.endpoint].recordNanoseconds(latency.nanoseconds)
        }
        attempt.timer?.cancel()
        attempt.timer = nil
    }

    /// Whether the authorization rules let the caller (its mutual-TLS identity) send `head` to `cluster`'s service.
    private func isAuthorized(_ head: HTTPForwardHead, _ authorization: AuthorizationPolicy, _ cluster: ProxyCluster)
        -> Bool
    {
        let path = head.bytes.withUnsafeReadableBytes { bytes in
            let target = UnsafeRawBufferPointer(rebasing: bytes[head.path])
            let end = target.firstIndex(of: UInt8(ascii: "?")) ?? target.count
            return String(decoding: UnsafeRawBufferPointer(rebasing: target[..<end]), as: UTF8.self)
        }
        return authorization.allows(caller: peer, service: cluster.service ?? cluster.name, path: path)
    }

    /// The current request has ended: the budget learns how, the concurrency limit what `concurrency` says, and it
    /// is forgotten.
    private func endCall(success: Bool, concurrency: ConcurrencyOutcome = .ignored, at now: SimInstant) {
        guard let cluster else { return }
        releaseRetry(at: now)
        cluster.edge.callFinished(success: success, at: now)
        if let permit = concurrencyPermit {
            concurrencyPermit = nil
            cluster.releaseConcurrency(permit, outcome: concurrency, at: now)
        }
        loop.pending -= 1
        self.cluster = nil
        forwarding = nil
        hedgeDue = false
        retryTimer?.cancel()
        retryTimer = nil
        hedgeTimer?.cancel()
        hedgeTimer = nil
    }

    // MARK: - Local answers

    /// Answers a request the proxy refuses itself, then closes.
    private func reject(_ rejection: Rejection) {
        respondLocally(rejection)
    }

    private func respondLocally(_ rejection: Rejection) {
        loop.shared.metrics.rejections[rejection.rawValue].increment()
        cancelTimer()
        guard let context else { return }
        phase = .closing
        let answer: LocalAnswer
        switch rejection {
        case .badRequest: answer = .badRequest
        case .headerTooLarge: answer = .headerTooLarge
        case .headerTimeout, .bodyTimeout: answer = .requestTimeout
        case .noRoute: answer = .notFound
        case .overload, .noEndpoint, .rateLimited, .throttled, .breakerOpen, .concurrencyLimited: answer = .unavailable
        case .deadlineExpired: answer = .gatewayTimeout
        case .forbidden: answer = .forbidden
        }
        context.writeAndFlush(wrapOutboundOut(answer.encoded)).whenComplete { [channel = context.channel] _ in
            channel.close(promise: nil)
        }
    }

    // MARK: - Timers

    /// Starts the current phase's timeout: the header timeout while a head is awaited, the idle timeout between
    /// requests, the body timeout between body reads.
    ///
    /// - Complexity: O(1); schedules a callback only when none is armed early enough.
    private func armTimer(_ duration: SimDuration) {
        guard let context else { return }
        let due = NIODeadline.now().uptimeNanoseconds &+ UInt64(max(0, duration.nanoseconds))
        deadline = due
        if timer != nil && timerAt <= due { return }
        timer?.cancel()
        schedule(at: due, on: context.eventLoop)
    }

    private func schedule(at due: UInt64, on eventLoop: any EventLoop) {
        timerAt = due
        timer = try? eventLoop.scheduleCallback(
            at: .uptimeNanoseconds(due),
            handler: LoopTimer { [self] in timerFired() }
        )
    }

    /// Ends the current phase's timeout (the armed callback, if any, finds nothing due and stops).
    private func cancelTimer() {
        deadline = nil
    }

    private func timerFired() {
        timer = nil
        guard let context, let due = deadline else { return }
        let now = NIODeadline.now().uptimeNanoseconds
        if now < due {
            // The phase changed since the callback was armed: wait for the current deadline.
            schedule(at: due, on: context.eventLoop)
            return
        }
        deadline = nil
        switch phase {
        case .idle:
            // An idle keep-alive connection (or one that never sent a byte) is closed silently, as nginx does.
            phase = .closing
            context.close(promise: nil)
        case .head:
            respondLocally(.headerTimeout)
        case .body:
            let limit = UInt64(max(0, configuration.bodyTimeout.nanoseconds))
            let bodyDue = lastBodyRead &+ limit
            if now < bodyDue {
                armTimer(.nanoseconds(Int64(bodyDue - now)))
            } else {
                bodyTimedOut()
            }
        case .waiting, .closing:
            break
        }
    }

    /// The request body paused longer than the body timeout: 408 if nothing was answered yet, else close; the
    /// upstream connection is dropped.
    private func bodyTimedOut() {
        if cluster != nil { endExchange(.cancelled, closingUpstreams: true) }
        if responseStarted {
            loop.shared.metrics.rejections[Rejection.bodyTimeout.rawValue].increment()
            phase = .closing
            context?.close(promise: nil)
        } else {
            respondLocally(.bodyTimeout)
        }
    }

    /// Closes the connection once its current exchange, if any, has ended (shutdown).
    func closeWhenIdle() {
        guard let context else { return }
        if cluster == nil {
            phase = .closing
            context.close(promise: nil)
        }
    }

    /// Closes the connection now (shutdown past the drain time).
    func closeNow() {
        context?.close(promise: nil)
    }
}

/// One attempt of a request on an upstream endpoint: its endpoint, breaker permission and balancer count are held
/// while it is open. Several are out at once when the request is hedged. Confined to its event loop, as its
/// ``DownstreamConnection`` is.
final class ProxyAttempt: @unchecked Sendable {
    /// The endpoint in its cluster.
    let endpoint: Int
    /// The backend index.
    let backend: Int
    /// Its place in an Envoy breaker's pool (returned when it ends).
    let pool: PoolState
    /// A retry (an attempt after the first that is not a hedge), for the breaker's accounting.
    let isRetry: Bool
    /// A hedge.
    let isHedge: Bool
    /// When it was sent (uptime ns).
    let started: UInt64
    /// The connection carrying it, once one is attached.
    var upstream: UpstreamConnection?
    /// Request bytes waiting for the connection.
    var outgoing = ByteBuffer()
    /// Its per-try timeout.
    var timer: NIOScheduledCallback?
    /// Not yet ended (answered, failed or cancelled).
    var isOpen = true

    init(endpoint: Int, backend: Int, pool: PoolState, isRetry: Bool, isHedge: Bool, started: UInt64) {
        self.endpoint = endpoint
        self.backend = backend
        self.pool = pool
        self.isRetry = isRetry
        self.isHedge = isHedge
        self.started = started
    }
}

/// The answers the proxy gives itself, encoded once.
enum LocalAnswer {
    case badRequest, headerTooLarge, requestTimeout, notFound, unavailable, badGateway, gatewayTimeout, forbidden

    var encoded: ByteBuffer {
        switch self {
        case .badRequest: return Self.table[0]
        case .headerTooLarge: return Self.table[1]
        case .requestTimeout: return Self.table[2]
        case .notFound: return Self.table[3]
        case .unavailable: return Self.table[4]
        case .badGateway: return Self.table[5]
        case .gatewayTimeout: return Self.table[6]
        case .forbidden: return Self.table[7]
        }
    }

    /// `100 Continue`, an interim answer to `Expect: 100-continue`.
    static let continueInterim = ByteBuffer(string: "HTTP/1.1 100 Continue\r\n\r\n")

    private static let table: [ByteBuffer] = [
        ("400 Bad Request", "bad request\n"),
        ("431 Request Header Fields Too Large", "header too large\n"),
        ("408 Request Timeout", "request timeout\n"),
        ("404 Not Found", "no route\n"),
        ("503 Service Unavailable", "no upstream available\n"),
        ("502 Bad Gateway", "upstream failed\n"),
        ("504 Gateway Timeout", "upstream timed out\n"),
        ("403 Forbidden", "RBAC: access denied\n"),
    ].map { status, body in
        ByteBuffer(
            string: "HTTP/1.1 \(status)\r\nServer: meshsim-proxy\r\nContent-Type: text/plain\r\nContent-Length: "
                + "\(body.utf8.count)\r\nConnection: close\r\n\r\n\(body)"
        )
    }
}
