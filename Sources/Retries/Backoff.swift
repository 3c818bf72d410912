//===----------------------------------------------------------------------===//
// meshsim — Retries
//===----------------------------------------------------------------------===//

public import SimCore

/// How long to wait before each retry: one of the production or published backoff formulas, as a small state machine.
///
/// `next(attempt:using:)` takes the retry number k (1 for the first retry) and a random number generator, and returns
/// the sleep before that retry. With base b, cap c, multiplier m and jitter fraction j (defaults per kind in
/// ``BackoffKind/defaultMultiplier`` and ``BackoffKind/defaultJitter``), and U[x, y) a uniform draw:
///
/// | kind | sleep before retry k | source |
/// |---|---|---|
/// | `none` | 0 | AWS backoff simulator (`aws-samples/aws-arch-backoff-simulator`, `src/backoff_simulator.py`) |
/// | `exponential` | E = min(c, b·m^k), m = 2 | same, "exponential backoff" without jitter |
/// | `full_jitter` | U[0, E) | same, "Full Jitter" |
/// | `equal_jitter` | E/2 + U[0, E − E/2) | same, "Equal Jitter" |
/// | `decorrelated_jitter` | min(c, U[b, m·previous)), m = 3, previous starts at b | same, "Decorrelated Jitter" |
/// | `envoy` | U[0, min(b·2^(k−1), c)) | Envoy `source/common/common/backoff_strategy.cc` |
/// | `grpc_retry` | min(b·m^(k−1), c) · U[1 − j, 1 + j), j = 0.2 | gRFC A6 as revised by grpc/proposal PR #452 |
/// | `grpc_retry_original` | U[0, min(b·m^(k−1), c)) | gRFC A6 before that revision |
/// | `grpc_connection_new` | b for k = 1, then min(b·m^(k−1), c) · U[1 − j, 1 + j) | grpc `doc/connection-backoff.md` |
/// | `grpc_connection_old` | b for k = 1, then clamp(m·prev · U[1 − j, 1 + j), b, c) | C-core `gpr_backoff_step` |
///
/// Notes on the sources:
/// - AWS ("Exponential Backoff And Jitter", Marc Brooker, AWS Architecture Blog, 2015): n starts at 1 on the first
///   retry, so the first un-jittered sleep is 2·base. AWS's own study used base 5 ms and cap 2 s.
/// - Envoy: `retry_back_off.base_interval` defaults to 25 ms and `max_interval` to 10 × base (see
///   ``envoy(baseInterval:maxInterval:)``); the interval doubles until doubling would pass the max. Envoy's docs
///   once described U[0, (2^k − 1)·base); the code is followed here. Envoy draws whole milliseconds; this draws
///   whole nanoseconds.
/// - gRPC retries (`retryPolicy`): the current A6 jitter can exceed `maxBackoff` by up to 20 %. grpc-go and grpc-java
///   follow the current text; grpc-node still uses full jitter, so both are offered.
/// - gRPC connection backoff (INITIAL 1 s, MULTIPLIER 1.6, JITTER 0.2, MAX 120 s): the current document (and grpc-go's
///   `internal/backoff`) jitters each wait around an un-jittered exponential, so waits at the cap lie in [96 s, 144 s].
///   C-core's earlier `gpr_backoff` stored the jittered wait and grew the next one from it, clamping into
///   [initial, max]; once it reaches the cap it stays exactly at the cap.
///
/// Stateful kinds (``BackoffKind/isStateful``) remember their previous sleep; retry 1 starts a new sequence. Give each
/// request its own copy. An `attempt` below 1 is treated as 1. Sleeps are rounded to whole nanoseconds.
public struct Backoff: Sendable, Equatable {
    /// The formula.
    public let kind: BackoffKind
    /// The base (AWS `base`, Envoy `base_interval`, gRPC `initialBackoff`).
    public let base: SimDuration
    /// The cap (AWS `cap`, Envoy `max_interval`, gRPC `maxBackoff`); gRPC's ±jitter kinds may exceed it by `jitter`.
    public let cap: SimDuration
    /// The growth factor per retry (≥ 1); for decorrelated jitter, the spread factor applied to the previous sleep.
    public let multiplier: Double
    /// The jitter fraction in [0, 1] for the gRPC kinds that jitter around the backoff (0.2 means ±20 %).
    public let jitter: Double
    /// The previous sleep in nanoseconds, for the stateful kinds.
    private var previous: Int64

    /// Creates a backoff, validating its parameters.
    ///
    /// - Parameters:
    ///   - kind: the formula.
    ///   - base: the first interval; must not be negative, and must be positive for Envoy and gRPC retry backoff.
    ///   - cap: the largest interval; must be at least `base`.
    ///   - multiplier: the growth factor (≥ 1); `nil` takes the kind's ``BackoffKind/defaultMultiplier``. Envoy's
    ///     backoff has none: for `.envoy` it must be 2 (or `nil`).
    ///   - jitter: the jitter fraction in [0, 1]; `nil` takes the kind's ``BackoffKind/defaultJitter``.
    /// - Throws: ``PolicyParameterError`` naming the parameter in the source's vocabulary (`base_interval`,
    ///   `initial_backoff`, `max_backoff`, `backoff_multiplier`, `jitter`…).
    public init(
        kind: BackoffKind,
        base: SimDuration,
        cap: SimDuration,
        multiplier: Double? = nil,
        jitter: Double? = nil
    ) throws {
        let names = kind.parameterNames
        let multiplier = multiplier ?? kind.defaultMultiplier
        let jitter = jitter ?? kind.defaultJitter
        if base < .zero {
            throw PolicyParameterError(names.base, "must not be negative, got \(base.formatted)")
        }
        if base == .zero && [.envoy, .grpcRetry, .grpcRetryOriginal].contains(kind) {
            throw PolicyParameterError(names.base, "must be greater than zero for \(kind.name) backoff")
        }
        if cap < base {
            throw PolicyParameterError(
                names.cap,
                "must be at least \(names.base) (\(base.formatted)), got \(cap.formatted)"
            )
        }
        if !(multiplier.isFinite && multiplier >= 1) {
            throw PolicyParameterError(names.multiplier, "must be a finite number of at least 1, got \(multiplier)")
        }
        if kind == .envoy && multiplier != 2 {
            // algorithms.md §2.4: the interval doubles until doubling would pass `max_interval`.
            throw PolicyParameterError(
                names.multiplier,
                "Envoy's retry backoff always doubles (JitteredExponentialBackOffStrategy has no multiplier), got \(multiplier)"
            )
        }
        if !(jitter >= 0 && jitter <= 1) {
            throw PolicyParameterError("jitter", "must be a fraction between 0 and 1, got \(jitter)")
        }
        self.kind = kind
        self.base = base
        self.cap = cap
        self.multiplier = multiplier
        self.jitter = jitter
        self.previous = base.nanoseconds
    }

    /// Envoy's route retry backoff: full jitter over an interval doubling from `baseInterval` up to `maxInterval`.
    ///
    /// Source: Envoy `envoy/config/route/v3/route_components.proto` (`RetryPolicy.RetryBackOff`) and
    /// `source/common/common/backoff_strategy.cc` (`JitteredExponentialBackOffStrategy`).
    /// - Parameters:
    ///   - baseInterval: `base_interval`, default 25 ms.
    ///   - maxInterval: `max_interval`, default 10 × `baseInterval`.
    /// - Throws: ``PolicyParameterError`` for `base_interval` ≤ 0 or `max_interval` < `base_interval`.
    public static func envoy(
        baseInterval: SimDuration = .milliseconds(25),
        maxInterval: SimDuration? = nil
    ) throws -> Backoff {
        let base = baseInterval.nanoseconds
        let tenfold = SimDuration(nanoseconds: base > Int64.max / 10 ? Int64.max : base * 10)
        return try Backoff(kind: .envoy, base: baseInterval, cap: maxInterval ?? tenfold)
    }

    /// gRPC's retry backoff (gRFC A6 `retryPolicy`): the current ±20 % variant, or the original full-jitter one.
    ///
    /// Source: grpc/proposal `A6-client-retries.md` (revised by PR #452, Aug 2024); grpc-go `stream.go`.
    /// - Throws: ``PolicyParameterError`` for `initial_backoff` ≤ 0, `max_backoff` < `initial_backoff`, or
    ///   `backoff_multiplier` < 1.
    public static func grpcRetry(
        initialBackoff: SimDuration,
        maxBackoff: SimDuration,
        backoffMultiplier: Double,
        original: Bool = false
    ) throws -> Backoff {
        try Backoff(
            kind: original ? .grpcRetryOriginal : .grpcRetry,
            base: initialBackoff,
            cap: maxBackoff,
            multiplier: backoffMultiplier
        )
    }

    /// gRPC's connection backoff with the document's defaults (1 s, ×1.6, ±0.2, 120 s), new or old jitter.
    ///
    /// Source: grpc/grpc `doc/connection-backoff.md`; grpc-go `internal/backoff`; grpc C-core `gpr_backoff` (old).
    /// `MIN_CONNECT_TIMEOUT` (20 s) bounds the connection attempt, not the backoff, and is the caller's concern.
    /// - Throws: ``PolicyParameterError`` for impossible values.
    public static func grpcConnection(
        old: Bool = false,
        initialBackoff: SimDuration = .seconds(1),
        multiplier: Double = 1.6,
        jitter: Double = 0.2,
        maxBackoff: SimDuration = .seconds(120)
    ) throws -> Backoff {
        try Backoff(
            kind: old ? .grpcConnectionOld : .grpcConnectionNew,
            base: initialBackoff,
            cap: maxBackoff,
            multiplier: multiplier,
            jitter: jitter
        )
    }

    /// The sleep before retry `attempt` (1 for the first retry), drawn with `rng`.
    ///
    /// Stateful kinds update their previous sleep; retry 1 restarts their sequence.
    /// - Complexity: O(1); no allocation.
    public mutating func next(attempt: Int, using rng: inout some RandomNumberGenerator) -> SimDuration {
        let k = max(attempt, 1)
        let b = base.nanoseconds
        switch kind {
        case .none:
            return .zero
        case .exponential:
            return SimDuration(nanoseconds: capped(exponent: k))
        case .fullJitter:
            return SimDuration(nanoseconds: uniform(below: capped(exponent: k), using: &rng))
        case .equalJitter:
            let full = capped(exponent: k)
            let half = full / 2
            return SimDuration(nanoseconds: half + uniform(below: full - half, using: &rng))
        case .decorrelatedJitter:
            if k == 1 { previous = b }
            let high = clampToNanoseconds(Double(previous) * multiplier)
            let drawn = high > b ? b + uniform(below: high - b, using: &rng) : b
            previous = min(cap.nanoseconds, drawn)
            return SimDuration(nanoseconds: previous)
        case .envoy, .grpcRetryOriginal:
            return SimDuration(nanoseconds: uniform(below: capped(exponent: k - 1), using: &rng))
        case .grpcRetry:
            return SimDuration(nanoseconds: jittered(capped(exponent: k - 1), using: &rng))
        case .grpcConnectionNew:
            if k == 1 { return base }
            return SimDuration(nanoseconds: jittered(capped(exponent: k - 1), using: &rng))
        case .grpcConnectionOld:
            if k == 1 {
                previous = b
            } else {
                let grown = clampToNanoseconds(Double(previous) * multiplier)
                previous = min(max(jittered(grown, using: &rng), b), cap.nanoseconds)
            }
            return SimDuration(nanoseconds: previous)
        }
    }

    /// Forgets the previous sleep, so the next call starts a new sequence whatever its `attempt`.
    ///
    /// gRPC resets its retry backoff this way after server pushback (`numRetriesSincePushback = 0`); a caller that
    /// counts attempts itself restarts them at 1 instead.
    /// - Complexity: O(1).
    public mutating func reset() {
        previous = base.nanoseconds
    }

    /// min(cap, base × multiplier^exponent) in nanoseconds.
    private func capped(exponent: Int) -> Int64 {
        let b = base.nanoseconds
        if b == 0 { return 0 }
        let grown = Double(b) * SimMath.pow(multiplier, Double(exponent))
        return grown >= Double(cap.nanoseconds) ? cap.nanoseconds : clampToNanoseconds(grown)
    }

    /// `value` × U[1 − jitter, 1 + jitter), rounded to nanoseconds.
    private func jittered(_ value: Int64, using rng: inout some RandomNumberGenerator) -> Int64 {
        let factor = 1 - jitter + 2 * jitter * uniformUnit(using: &rng)
        return clampToNanoseconds(Double(value) * factor)
    }

    /// A uniform integer in [0, bound), or 0 when `bound` ≤ 0.
    private func uniform(below bound: Int64, using rng: inout some RandomNumberGenerator) -> Int64 {
        bound > 0 ? Int64(uniformBelow(UInt64(bound), using: &rng)) : 0
    }
}
