//===----------------------------------------------------------------------===//
// meshsim — Limiters
//===----------------------------------------------------------------------===//

public import SimCore

/// Google SRE client-side adaptive throttling: rejects locally as the share of requests the backend accepts falls.
///
/// Source: *Site Reliability Engineering*, ch. 21 "Handling Overload", § Client-Side Throttling, Eq. 21-1
/// (https://sre.google/sre-book/handling-overload/), reference section 6. A request is rejected locally with
/// probability `max(0, (requests − K·accepts) / (requests + 1))`, where each client keeps, over the last
/// 2 minutes, `requests` (attempts, counted when the application attempts the call, including attempts rejected
/// locally) and `accepts` (requests the backend accepted), with K = 2. Clients send freely until
/// `requests ≥ K·accepts`.
///
/// Variants, as the reference lists them:
/// - ``Configuration/sreBook()``: K = 2, a 2-minute window, requests counted at attempt. The book does not say how
///   the window is kept; here it is 120 buckets of 1 s (a simulator choice).
/// - ``Configuration/goZero()``: go-zero's `googleBreaker`: K = 1.5, a 10 s window in 40 buckets of 250 ms,
///   `protection = 5`, so the ratio is `max(0, (requests − 5 − K·accepts) / (requests + 1))`, and requests counted
///   when they complete (go-zero#5011 criticises this; both countings are offered, ``RequestCounting``).
///   Newer go-zero's adaptive K and forced passes after a quiet period are not modelled.
///
/// The window is a ring of time buckets allocated once: bucket `i` covers `[i·w, (i+1)·w)` with `w = window /
/// buckets`, and the counts are those of the current bucket and the `buckets − 1` before it. An instant earlier than
/// one already seen is counted in the latest bucket. The rejection draw takes one `uniformUnit` from the caller's
/// generator, and only when the probability is above 0.
public struct AdaptiveThrottle: Sendable {
    /// When a request is counted in `requests`.
    public enum RequestCounting: String, Sendable, Equatable, CaseIterable {
        /// When the application attempts it (``AdaptiveThrottle/shouldReject(at:using:)``), local rejections
        /// included: the SRE book's definition.
        case atAttempt
        /// When it completes (``AdaptiveThrottle/record(accepted:at:)``); local rejections are not counted.
        case atCompletion
    }

    /// A validated throttling configuration.
    public struct Configuration: Sendable, Equatable {
        /// The multiplier on accepts (`k`, > 0; the book's K = 2).
        public var k: Double
        /// How far back requests and accepts are counted (`window`, > 0).
        public var window: SimDuration
        /// Time buckets in the window (`buckets`, ≥ 1, dividing `window` into whole nanoseconds).
        public var buckets: Int
        /// Requests subtracted before the ratio, go-zero's `protection` (`protection`, ≥ 0; the book's is 0).
        public var protection: Int
        /// When requests are counted.
        public var counting: RequestCounting

        /// Creates a configuration (the SRE book's by default); throws `PolicyParameterError` for impossible values.
        public init(
            k: Double = 2,
            window: SimDuration = .seconds(120),
            buckets: Int = 120,
            protection: Int = 0,
            counting: RequestCounting = .atAttempt
        ) throws {
            self.k = k
            self.window = window
            self.buckets = buckets
            self.protection = protection
            self.counting = counting
            try validate()
        }

        /// The SRE book: K = 2 over the last 2 minutes, requests counted at attempt.
        public static func sreBook() throws -> Configuration { try Configuration() }

        /// go-zero `googleBreaker`: K = 1.5, 10 s in 40 buckets, protection 5, requests counted at completion.
        public static func goZero() throws -> Configuration {
            try Configuration(k: 1.5, window: .seconds(10), buckets: 40, protection: 5, counting: .atCompletion)
        }

        /// Throws `PolicyParameterError` naming the first impossible field.
        public func validate() throws {
            if !(k > 0 && k.isFinite) { throw PolicyParameterError("k", "must be a finite number > 0 (got \(k))") }
            if window <= .zero { throw PolicyParameterError("window", "must be positive") }
            if buckets < 1 { throw PolicyParameterError("buckets", "must be at least 1 (got \(buckets))") }
            if buckets > 100_000 { throw PolicyParameterError("buckets", "must be at most 100000 (got \(buckets))") }
            if window.nanoseconds % Int64(buckets) != 0 {
                throw PolicyParameterError("buckets", "must divide the window into whole nanoseconds")
            }
            if protection < 0 { throw PolicyParameterError("protection", "must be at least 0 (got \(protection))") }
        }
    }

    /// The configuration this throttle runs.
    public let configuration: Configuration
    /// Requests counted in the window.
    public private(set) var requests = 0
    /// Accepts counted in the window.
    public private(set) var accepts = 0

    private let bucketWidth: Int64
    private var requestBuckets: [Int]
    private var acceptBuckets: [Int]
    /// The index `⌊now / w⌋` of the newest bucket.
    private var newestBucket = Int64.min

    /// Creates a throttle with an empty window (allocates its buckets).
    public init(_ configuration: Configuration) throws {
        try configuration.validate()
        self.configuration = configuration
        bucketWidth = configuration.window.nanoseconds / Int64(configuration.buckets)
        requestBuckets = [Int](repeating: 0, count: configuration.buckets)
        acceptBuckets = [Int](repeating: 0, count: configuration.buckets)
    }

    /// The probability that a request at `now` is rejected locally.
    ///
    /// - Complexity: O(buckets) at most when the window has moved; no allocation.
    public mutating func rejectProbability(at now: SimInstant) -> Double {
        advance(to: now)
        return probability()
    }

    /// Decides whether to reject a request locally at `now`; counts it as an attempt when counting at attempt.
    ///
    /// The probability uses the counts before this attempt.
    /// - Complexity: O(1) amortized (O(buckets) at most when the window has moved); no allocation.
    public mutating func shouldReject(at now: SimInstant, using rng: inout some RandomNumberGenerator) -> Bool {
        let slot = advance(to: now)
        let p = probability()
        if configuration.counting == .atAttempt {
            requestBuckets[slot] += 1
            requests += 1
        }
        return p > 0 && uniformUnit(using: &rng) < p
    }

    /// Records the end of a request sent to the backend: `accepted` if the backend accepted it.
    ///
    /// - Complexity: O(1) amortized (O(buckets) at most when the window has moved); no allocation.
    public mutating func record(accepted: Bool, at now: SimInstant) {
        let slot = advance(to: now)
        if configuration.counting == .atCompletion {
            requestBuckets[slot] += 1
            requests += 1
        }
        if accepted {
            acceptBuckets[slot] += 1
            accepts += 1
        }
    }

    /// `max(0, (requests − protection − K·accepts) / (requests + 1))`.
    private func probability() -> Double {
        let numerator = Double(requests - configuration.protection) - configuration.k * Double(accepts)
        return max(0, numerator / Double(requests + 1))
    }

    /// Moves the window so its newest bucket holds `now`, clearing buckets that fell out; returns that bucket's slot.
    @discardableResult
    private mutating func advance(to now: SimInstant) -> Int {
        let count = Int64(configuration.buckets)
        let index = floorDivide(now.nanoseconds, bucketWidth)
        if index > newestBucket {
            if newestBucket == .min || index - newestBucket >= count {
                for slot in 0..<configuration.buckets {
                    requestBuckets[slot] = 0
                    acceptBuckets[slot] = 0
                }
                requests = 0
                accepts = 0
            } else {
                var cleared = newestBucket + 1
                while cleared <= index {
                    let slot = Int(floorMod(cleared, count))
                    requests -= requestBuckets[slot]
                    accepts -= acceptBuckets[slot]
                    requestBuckets[slot] = 0
                    acceptBuckets[slot] = 0
                    cleared += 1
                }
            }
            newestBucket = index
        }
        return Int(floorMod(newestBucket, count))
    }
}
