//===----------------------------------------------------------------------===//
// meshsim — Breakers
//===----------------------------------------------------------------------===//

public import SimCore

/// The settings of a Hystrix circuit breaker, with Hystrix's defaults, validated at creation.
///
/// Source: Hystrix `hystrix-core/…/HystrixCommandProperties.java`, as summarized in the project reference
/// (`algorithms.md` §7.2). Parameter names in errors are the property names in snake_case.
public struct HystrixCircuitBreakerConfiguration: Sendable, Equatable {
    /// The fewest requests in the rolling window before the breaker may trip
    /// (`circuitBreaker.requestVolumeThreshold`, default 20).
    public let requestVolumeThreshold: Int
    /// The error percentage at or above which the breaker trips (`circuitBreaker.errorThresholdPercentage`,
    /// default 50).
    public let errorThresholdPercentage: Int
    /// How long the breaker stays OPEN before a trial request (`circuitBreaker.sleepWindowInMilliseconds`,
    /// default 5 s).
    public let sleepWindow: SimDuration
    /// The length of the rolling window (`metrics.rollingStats.timeInMilliseconds`, default 10 s).
    public let rollingStatisticalWindow: SimDuration
    /// The buckets the rolling window is divided into (`metrics.rollingStats.numBuckets`, default 10).
    public let rollingStatisticalWindowBuckets: Int
    /// The least time between two recomputations of the health counts
    /// (`metrics.healthSnapshot.intervalInMilliseconds`, default 500 ms).
    public let healthSnapshotInterval: SimDuration
    /// Calls longer than this count as timeouts (`execution.isolation.thread.timeoutInMilliseconds`, default 1 s);
    /// `nil` disables the classification.
    public let executionTimeout: SimDuration?

    /// Creates a configuration; every argument defaults to Hystrix's default.
    ///
    /// - Throws: `PolicyParameterError` for a request volume threshold or bucket count below 1, an error percentage
    ///   outside [0, 100], a negative sleep window or snapshot interval, a non-positive rolling window or timeout,
    ///   or a rolling window that does not divide into whole-nanosecond buckets.
    public init(
        requestVolumeThreshold: Int = 20,
        errorThresholdPercentage: Int = 50,
        sleepWindow: SimDuration = .seconds(5),
        rollingStatisticalWindow: SimDuration = .seconds(10),
        rollingStatisticalWindowBuckets: Int = 10,
        healthSnapshotInterval: SimDuration = .milliseconds(500),
        executionTimeout: SimDuration? = .seconds(1)
    ) throws {
        try Validate.atLeast(requestVolumeThreshold, 1, "request_volume_threshold")
        try Validate.percent(Double(errorThresholdPercentage), "error_threshold_percentage", allowZero: true)
        try Validate.nonNegative(sleepWindow, "sleep_window")
        try Validate.positive(rollingStatisticalWindow, "rolling_statistical_window")
        try Validate.atLeast(rollingStatisticalWindowBuckets, 1, "rolling_statistical_window_buckets")
        if rollingStatisticalWindow.nanoseconds % Int64(rollingStatisticalWindowBuckets) != 0 {
            throw PolicyParameterError(
                "rolling_statistical_window_buckets",
                "must divide the rolling window (\(rollingStatisticalWindow.formatted)) into equal buckets"
            )
        }
        try Validate.nonNegative(healthSnapshotInterval, "health_snapshot_interval")
        if let executionTimeout { try Validate.positive(executionTimeout, "execution_timeout") }
        self.requestVolumeThreshold = requestVolumeThreshold
        self.errorThresholdPercentage = errorThresholdPercentage
        self.sleepWindow = sleepWindow
        self.rollingStatisticalWindow = rollingStatisticalWindow
        self.rollingStatisticalWindowBuckets = rollingStatisticalWindowBuckets
        self.healthSnapshotInterval = healthSnapshotInterval
        self.executionTimeout = executionTimeout
    }

    /// The length of one bucket of the rolling window.
    public var bucketLength: SimDuration {
        .nanoseconds(rollingStatisticalWindow.nanoseconds / Int64(rollingStatisticalWindowBuckets))
    }
}

/// The outcome of a Hystrix command, as its health counts see it.
public enum HystrixOutcome: Sendable, Equatable {
    /// The command succeeded.
    case success
    /// The command threw.
    case failure
    /// The command timed out.
    case timeout
    /// The command was rejected by its thread pool or semaphore.
    case rejected
}

/// Hystrix's health counts over the rolling window.
public struct HystrixHealthCounts: Sendable, Equatable {
    /// Successes, failures, timeouts and rejections.
    public var totalRequests: Int
    /// Failures, timeouts and rejections.
    public var errorCount: Int
    /// `errorCount / totalRequests × 100`, truncated to an integer as Hystrix does (0 with no requests).
    public var errorPercentage: Int

    /// Creates health counts from totals.
    public init(totalRequests: Int, errorCount: Int) {
        self.totalRequests = totalRequests
        self.errorCount = errorCount
        errorPercentage = totalRequests > 0 ? Int(Double(errorCount) / Double(totalRequests) * 100) : 0
    }
}

/// The Hystrix circuit breaker: trips on the error percentage of a bucketed rolling window, sleeps, then lets a
/// single trial request decide.
///
/// Source: Hystrix `hystrix-core/…/HystrixCircuitBreaker.java` and `HystrixCommandProperties.java`, as the project
/// reference gives them (`algorithms.md` §7.2):
/// - Health counts come from a rolling window of `rollingStatisticalWindow` in `rollingStatisticalWindowBuckets`
///   buckets (10 s in 10 buckets of 1 s): `total` = successes + failures + timeouts + rejections, `errors` = all
///   but the successes. Buckets start where the previous one ended; after a gap longer than the window, the
///   window restarts at the current instant.
/// - The counts are a snapshot recomputed at most every `healthSnapshotInterval` (the first one
///   `healthSnapshotInterval` after creation), so trips lag the traffic by up to that interval. The snapshot is
///   taken, and the trip checked, when a request asks permission in CLOSED.
/// - CLOSED → OPEN when `total ≥ requestVolumeThreshold` and `errorPercentage ≥ errorThresholdPercentage`; the
///   request that finds this is rejected.
/// - OPEN rejects every request (short-circuit) until `now > openedAt + sleepWindow`; then exactly one request is
///   let through and the breaker is HALF_OPEN, rejecting everything else.
/// - In HALF_OPEN a success closes the breaker and resets the rolling window; any other outcome reopens it with
///   a new `openedAt`. (Any outcome recorded in HALF_OPEN counts, as Hystrix does not tell the trial apart.)
///
/// Storage is sized at creation; `acquire` and `record` do not allocate.
public struct HystrixCircuitBreakerStateMachine: CircuitBreaker {
    private struct Bucket: Sendable {
        var total = 0
        var errors = 0
    }

    /// The configuration the breaker runs with.
    public let configuration: HystrixCircuitBreakerConfiguration
    /// The current state: `.closed`, `.open` or `.halfOpen`.
    public private(set) var state: BreakerState = .closed
    /// The health counts of the last snapshot.
    public private(set) var healthSnapshot = HystrixHealthCounts(totalRequests: 0, errorCount: 0)
    /// Requests rejected by the breaker (Hystrix's `SHORT_CIRCUITED` events).
    public private(set) var shortCircuitedCount = 0
    private var snapshotAt: SimInstant
    private var buckets: [Bucket]
    private var head = 0
    private var filled = 0
    private var currentBucketStart: SimInstant?
    private var totals = Bucket()
    private var openedAt = SimInstant.zero

    /// Creates a CLOSED breaker at `start` (the health-snapshot cadence starts there).
    public init(configuration: HystrixCircuitBreakerConfiguration, start: SimInstant = .zero) {
        self.configuration = configuration
        self.snapshotAt = start
        self.buckets = [Bucket](repeating: Bucket(), count: configuration.rollingStatisticalWindowBuckets)
    }

    /// The instant the breaker last opened, or `nil` when it is CLOSED.
    public var openedInstant: SimInstant? { state == .closed ? nil : openedAt }

    /// The health counts of the rolling window as of `now`, without taking a snapshot.
    public func rollingHealthCounts(at now: SimInstant) -> HystrixHealthCounts {
        var copy = self
        copy.roll(to: now)
        return HystrixHealthCounts(totalRequests: copy.totals.total, errorCount: copy.totals.errors)
    }

    /// Asks whether a request may start at `now`.
    ///
    /// - Complexity: O(1) amortized (rolling forward may clear up to `rollingStatisticalWindowBuckets` buckets);
    ///   does not allocate.
    public mutating func acquire(at now: SimInstant) -> Permission {
        switch state {
        case .closed:
            if now - snapshotAt >= configuration.healthSnapshotInterval {
                roll(to: now)
                healthSnapshot = HystrixHealthCounts(totalRequests: totals.total, errorCount: totals.errors)
                snapshotAt = now
            }
            if healthSnapshot.totalRequests >= configuration.requestVolumeThreshold,
                healthSnapshot.errorPercentage >= configuration.errorThresholdPercentage
            {
                state = .open
                openedAt = now
                shortCircuitedCount += 1
                return .rejected
            }
            return .permitted
        case .open:
            if now > openedAt + configuration.sleepWindow {
                state = .halfOpen
                return .permitted
            }
            shortCircuitedCount += 1
            return .rejected
        default:
            shortCircuitedCount += 1
            return .rejected
        }
    }

    /// Records the outcome of a request that ended at `now`.
    ///
    /// - Returns: The state change the outcome caused (HALF_OPEN → CLOSED or → OPEN), if any.
    /// - Complexity: O(1) amortized; does not allocate.
    public mutating func record(_ outcome: HystrixOutcome, at now: SimInstant) -> BreakerTransition? {
        roll(to: now)
        let isError = outcome != .success
        buckets[head].total += 1
        totals.total += 1
        if isError {
            buckets[head].errors += 1
            totals.errors += 1
        }
        guard state == .halfOpen else { return nil }
        if isError {
            state = .open
            openedAt = now
            return BreakerTransition(from: .halfOpen, to: .open)
        }
        state = .closed
        resetWindow(at: now)
        return BreakerTransition(from: .halfOpen, to: .closed)
    }

    /// Records a request that ended at `now` after `duration`: a timeout if longer than `executionTimeout`, else a
    /// success or a failure.
    ///
    /// - Complexity: O(1) amortized; does not allocate.
    public mutating func record(success: Bool, duration: SimDuration, at now: SimInstant) -> BreakerTransition? {
        if let timeout = configuration.executionTimeout, duration > timeout {
            return record(.timeout, at: now)
        }
        return record(success ? .success : .failure, at: now)
    }

    // MARK: - Rolling window

    /// Makes the bucket containing `now` current, clearing the buckets it rolls over.
    private mutating func roll(to now: SimInstant) {
        let length = configuration.bucketLength
        guard let start = currentBucketStart else {
            startWindow(at: now)
            return
        }
        if now < start + length { return }
        if now - (start + length) > configuration.rollingStatisticalWindow {
            startWindow(at: now)
            return
        }
        var bucketStart = start
        while now >= bucketStart + length {
            bucketStart = bucketStart + length
            pushBucket()
        }
        currentBucketStart = bucketStart
    }

    private mutating func pushBucket() {
        head = (head + 1) % buckets.count
        if filled == buckets.count {
            totals.total -= buckets[head].total
            totals.errors -= buckets[head].errors
        } else {
            filled += 1
        }
        buckets[head] = Bucket()
    }

    private mutating func startWindow(at now: SimInstant) {
        for i in buckets.indices { buckets[i] = Bucket() }
        totals = Bucket()
        head = 0
        filled = 1
        currentBucketStart = now
    }

    /// Resets the rolling window and the health snapshot, as Hystrix does when the breaker closes.
    private mutating func resetWindow(at now: SimInstant) {
        startWindow(at: now)
        healthSnapshot = HystrixHealthCounts(totalRequests: 0, errorCount: 0)
        snapshotAt = now
    }
}
