//===----------------------------------------------------------------------===//
// meshsim — Breakers
//===----------------------------------------------------------------------===//

public import SimCore

/// The settings of a resilience4j CircuitBreaker, with resilience4j's defaults, validated at creation.
///
/// Source: resilience4j `resilience4j-circuitbreaker/…/CircuitBreakerConfig.java`, as summarized in the project
/// reference (`algorithms.md` §7.1). Parameter names in errors are the builder's names in snake_case.
public struct Resilience4jCircuitBreakerConfiguration: Sendable, Equatable {
    /// How the sliding window of the CLOSED state is kept.
    public enum SlidingWindowType: Sendable, Equatable {
        /// `COUNT_BASED`: the last `slidingWindowSize` calls.
        case countBased
        /// `TIME_BASED`: the calls of the last `slidingWindowSize` seconds, in one-second buckets.
        case timeBased
    }

    /// How long the breaker stays OPEN, as a function of the number of consecutive OPEN entries (`attempts`).
    public enum WaitInterval: Sendable, Equatable {
        /// The same wait every time (`waitDurationInOpenState`).
        case fixed(SimDuration)
        /// `initial × multiplier^(attempts − 1)`, capped at `maximum` if given (`IntervalFunction` exponential
        /// back-off, passed as `waitIntervalFunctionInOpenState`).
        case exponential(initial: SimDuration, multiplier: Double, maximum: SimDuration?)

        /// The wait for the `attempts`-th consecutive OPEN entry (1 for the first).
        public func duration(attempts: Int) -> SimDuration {
            switch self {
            case .fixed(let wait):
                return wait
            case .exponential(let initial, let multiplier, let maximum):
                let exponent = Double(max(0, attempts - 1))
                let value = Double(initial.nanoseconds) * SimMath.pow(multiplier, exponent)
                let wait = SimDuration(nanoseconds: clampToNanoseconds(value))
                return maximum.map { min(wait, $0) } ?? wait
            }
        }
    }

    /// The failure rate in percent at or above which the breaker opens (`failureRateThreshold`, default 50).
    public let failureRateThreshold: Double
    /// The slow-call rate in percent at or above which the breaker opens (`slowCallRateThreshold`, default 100).
    public let slowCallRateThreshold: Double
    /// Calls longer than this are slow (`slowCallDurationThreshold`, default 60 s).
    public let slowCallDurationThreshold: SimDuration
    /// How the CLOSED window is kept (`slidingWindowType`, default `COUNT_BASED`).
    public let slidingWindowType: SlidingWindowType
    /// Calls (COUNT_BASED) or seconds (TIME_BASED) in the window (`slidingWindowSize`, default 100).
    public let slidingWindowSize: Int
    /// The largest `slidingWindowSize` accepted: a million calls, or 11.6 days of one-second buckets (40 MB).
    public static let maxSlidingWindowSize = 1_000_000
    /// The fewest calls before rates are computed (`minimumNumberOfCalls`, default 100).
    public let minimumNumberOfCalls: Int
    /// The wait in OPEN before HALF_OPEN (`waitDurationInOpenState`, default 60 s, or a wait interval function).
    public let waitIntervalInOpenState: WaitInterval
    /// Trial calls admitted in HALF_OPEN (`permittedNumberOfCallsInHalfOpenState`, default 10).
    public let permittedNumberOfCallsInHalfOpenState: Int
    /// The longest stay in HALF_OPEN before `transitionToStateAfterWaitDuration`; zero means forever
    /// (`maxWaitDurationInHalfOpenState`, default 0).
    public let maxWaitDurationInHalfOpenState: SimDuration
    /// The state entered when `maxWaitDurationInHalfOpenState` runs out: `.open` (the default) or `.closed`.
    public let transitionToStateAfterWaitDuration: BreakerState
    /// Whether OPEN turns HALF_OPEN by itself when the wait is over, instead of on the next call attempt
    /// (`automaticTransitionFromOpenToHalfOpenEnabled`, default false).
    public let automaticTransitionFromOpenToHalfOpenEnabled: Bool

    /// Creates a configuration; every argument defaults to resilience4j's default.
    ///
    /// - Throws: `PolicyParameterError` for a rate threshold outside (0, 100], a negative duration, a window size,
    ///   minimum number of calls or permitted number of calls below 1, an exponential multiplier below 1 or a
    ///   maximum below the initial wait, or a state after the half-open wait other than `.open` or `.closed`.
    public init(
        failureRateThreshold: Double = 50,
        slowCallRateThreshold: Double = 100,
        slowCallDurationThreshold: SimDuration = .seconds(60),
        slidingWindowType: SlidingWindowType = .countBased,
        slidingWindowSize: Int = 100,
        minimumNumberOfCalls: Int = 100,
        waitIntervalInOpenState: WaitInterval = .fixed(.seconds(60)),
        permittedNumberOfCallsInHalfOpenState: Int = 10,
        maxWaitDurationInHalfOpenState: SimDuration = .zero,
        transitionToStateAfterWaitDuration: BreakerState = .open,
        automaticTransitionFromOpenToHalfOpenEnabled: Bool = false
    ) throws {
        try Validate.percent(failureRateThreshold, "failure_rate_threshold", allowZero: false)
        try Validate.percent(slowCallRateThreshold, "slow_call_rate_threshold", allowZero: false)
        try Validate.nonNegative(slowCallDurationThreshold, "slow_call_duration_threshold")
        try Validate.atLeast(slidingWindowSize, 1, "sliding_window_size")
        // The window is allocated up front: a slot per call, or a bucket per second.
        guard slidingWindowSize <= Self.maxSlidingWindowSize else {
            throw PolicyParameterError(
                "sliding_window_size",
                "must be at most \(Self.maxSlidingWindowSize) (the window keeps a slot per call or per second), "
                    + "not \(slidingWindowSize)"
            )
        }
        try Validate.atLeast(minimumNumberOfCalls, 1, "minimum_number_of_calls")
        switch waitIntervalInOpenState {
        case .fixed(let wait):
            try Validate.nonNegative(wait, "wait_duration_in_open_state")
        case .exponential(let initial, let multiplier, let maximum):
            try Validate.nonNegative(initial, "wait_duration_in_open_state")
            if !(multiplier.isFinite && multiplier >= 1) {
                throw PolicyParameterError(
                    "wait_interval_multiplier",
                    "must be a finite number ≥ 1, got \(multiplier)"
                )
            }
            if let maximum, maximum < initial {
                throw PolicyParameterError("max_wait_interval", "must not be below the initial wait")
            }
        }
        try Validate.atLeast(permittedNumberOfCallsInHalfOpenState, 1, "permitted_number_of_calls_in_half_open_state")
        try Validate.nonNegative(maxWaitDurationInHalfOpenState, "max_wait_duration_in_half_open_state")
        if transitionToStateAfterWaitDuration != .open && transitionToStateAfterWaitDuration != .closed {
            throw PolicyParameterError(
                "transition_to_state_after_wait_duration",
                "must be open or closed, got \(transitionToStateAfterWaitDuration)"
            )
        }
        self.failureRateThreshold = failureRateThreshold
        self.slowCallRateThreshold = slowCallRateThreshold
        self.slowCallDurationThreshold = slowCallDurationThreshold
        self.slidingWindowType = slidingWindowType
        self.slidingWindowSize = slidingWindowSize
        self.minimumNumberOfCalls = minimumNumberOfCalls
        self.waitIntervalInOpenState = waitIntervalInOpenState
        self.permittedNumberOfCallsInHalfOpenState = permittedNumberOfCallsInHalfOpenState
        self.maxWaitDurationInHalfOpenState = maxWaitDurationInHalfOpenState
        self.transitionToStateAfterWaitDuration = transitionToStateAfterWaitDuration
        self.automaticTransitionFromOpenToHalfOpenEnabled = automaticTransitionFromOpenToHalfOpenEnabled
    }

    /// The fewest calls before the CLOSED window is evaluated: `min(minimumNumberOfCalls, slidingWindowSize)` for
    /// COUNT_BASED, `minimumNumberOfCalls` for TIME_BASED.
    public var closedMinimumNumberOfCalls: Int {
        switch slidingWindowType {
        case .countBased: return min(minimumNumberOfCalls, slidingWindowSize)
        case .timeBased: return minimumNumberOfCalls
        }
    }

    /// The fewest calls before the HALF_OPEN window is evaluated:
    /// `min(minimumNumberOfCalls, permittedNumberOfCallsInHalfOpenState)`.
    public var halfOpenMinimumNumberOfCalls: Int {
        min(minimumNumberOfCalls, permittedNumberOfCallsInHalfOpenState)
    }
}
