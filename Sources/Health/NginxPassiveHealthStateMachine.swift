//===----------------------------------------------------------------------===//
// meshsim — Health
//===----------------------------------------------------------------------===//

public import SimCore

/// The HTTP statuses nginx counts as server failures, as listed in `proxy_next_upstream`.
///
/// Errors and timeouts (`RequestResult.gatewayFailure`) always count; 403 and 404 never do.
public struct NginxFailureStatuses: OptionSet, Sendable, Equatable {
    /// The raw bits.
    public let rawValue: UInt8
    /// Creates a set from raw bits.
    public init(rawValue: UInt8) { self.rawValue = rawValue }

    /// `http_500`.
    public static let http500 = NginxFailureStatuses(rawValue: 1 << 0)
    /// `http_502`.
    public static let http502 = NginxFailureStatuses(rawValue: 1 << 1)
    /// `http_503`.
    public static let http503 = NginxFailureStatuses(rawValue: 1 << 2)
    /// `http_504`.
    public static let http504 = NginxFailureStatuses(rawValue: 1 << 3)
    /// `http_429`.
    public static let http429 = NginxFailureStatuses(rawValue: 1 << 4)

    /// Whether `status` is in the set.
    public func contains(status: Int) -> Bool {
        switch status {
        case 500: return contains(.http500)
        case 502: return contains(.http502)
        case 503: return contains(.http503)
        case 504: return contains(.http504)
        case 429: return contains(.http429)
        default: return false
        }
    }
}

/// The settings of nginx passive health (`server … max_fails=N fail_timeout=T`), validated at creation.
///
/// Source: nginx `ngx_http_upstream_module` documentation, as summarized in the project reference
/// (`loadgen-and-proxies.md` §5.1).
public struct NginxPassiveHealthConfiguration: Sendable, Equatable {
    /// How failures are counted.
    public enum Variant: Sendable, Equatable {
        /// As documented: `max_fails` failures within the last `fail_timeout` make the server unavailable for
        /// `fail_timeout` from the last of them.
        case documented
        /// As nginx's round-robin peer code counts them (`ngx_http_upstream_round_robin.c`): a failure increments
        /// `fails` and sets `checked` and `accessed` to now; a peer with `fails ≥ max_fails` is skipped while
        /// `now − checked ≤ fail_timeout`; picking a peer more than `fail_timeout` after `checked` sets `checked`
        /// to now, and a success with `accessed < checked` clears `fails`. Needs `selected(host:at:)` calls.
        case roundRobinModule
    }

    /// Failures that make a server unavailable (`max_fails`, default 1; 0 disables the accounting).
    public let maxFails: Int
    /// The failure window and the unavailability time (`fail_timeout`, default 10 s).
    public let failTimeout: SimDuration
    /// The HTTP statuses counted as failures besides errors and timeouts (`proxy_next_upstream`'s `http_*`
    /// values; default none, as `proxy_next_upstream` defaults to `error timeout`).
    public let failureStatuses: NginxFailureStatuses
    /// How failures are counted (default `.documented`).
    public let variant: Variant

    /// Creates a configuration.
    ///
    /// - Throws: `PolicyParameterError` for a negative `max_fails` or `fail_timeout`.
    public init(
        maxFails: Int = 1,
        failTimeout: SimDuration = .seconds(10),
        failureStatuses: NginxFailureStatuses = [],
        variant: Variant = .documented
    ) throws {
        try Validate.atLeast(maxFails, 0, "max_fails")
        try Validate.nonNegative(failTimeout, "fail_timeout")
        self.maxFails = maxFails
        self.failTimeout = failTimeout
        self.failureStatuses = failureStatuses
        self.variant = variant
    }

    /// Whether nginx counts `result` as a failure of the server.
    public func isFailure(_ result: RequestResult) -> Bool {
        switch result {
        case .success: return false
        case .httpError(let status): return failureStatuses.contains(status: status)
        case .gatewayFailure: return true
        }
    }
}

/// nginx passive health for one upstream group: `max_fails` failures within `fail_timeout` make a server
/// unavailable for `fail_timeout`.
///
/// Source: nginx `ngx_http_upstream_module` (`server` parameters `max_fails`, `fail_timeout`; what counts as a
/// failure comes from `proxy_next_upstream`), as the project reference gives it (`loadgen-and-proxies.md` §5.1);
/// the `.roundRobinModule` variant follows nginx's `ngx_http_upstream_round_robin.c` peer accounting.
///
/// `max_fails = 0` disables the accounting, and a group with a single server never goes down. Time is exact here
/// (nginx itself counts in whole seconds).
public struct NginxPassiveHealthStateMachine: HostHealth {
    /// The configuration the group runs with.
    public let configuration: NginxPassiveHealthConfiguration
    private let count: Int
    // `.documented`: a ring of the last `max_fails` failure instants per host, and the end of unavailability.
    private var failureTimes: [SimInstant]
    private var ringNext: [Int]
    private var ringFilled: [Int]
    private var downUntil: [SimInstant]
    // `.roundRobinModule`: nginx's per-peer `fails`, `accessed` and `checked`.
    private var fails: [Int]
    private var accessed: [SimInstant]
    private var checked: [SimInstant]

    /// Creates the state of a group of `hostCount` servers, all available.
    ///
    /// - Throws: `PolicyParameterError` (`host_count`) if `hostCount` is negative.
    public init(hostCount: Int, configuration: NginxPassiveHealthConfiguration) throws {
        try Validate.atLeast(hostCount, 0, "host_count")
        self.configuration = configuration
        self.count = hostCount
        let documented = configuration.variant == .documented
        let ringSize = documented ? hostCount * configuration.maxFails : 0
        let documentedHosts = documented ? hostCount : 0
        let moduleHosts = documented ? 0 : hostCount
        failureTimes = [SimInstant](repeating: .zero, count: ringSize)
        ringNext = [Int](repeating: 0, count: documentedHosts)
        ringFilled = [Int](repeating: 0, count: documentedHosts)
        downUntil = [SimInstant](repeating: .zero, count: documentedHosts)
        fails = [Int](repeating: 0, count: moduleHosts)
        accessed = [SimInstant](repeating: .zero, count: moduleHosts)
        checked = [SimInstant](repeating: .zero, count: moduleHosts)
    }

    /// The number of servers in the group.
    public var hostCount: Int { count }

    /// Whether `host` may be picked at `now`.
    ///
    /// - Complexity: O(1).
    public func isUsable(host: Int, at now: SimInstant) -> Bool {
        guard host >= 0, host < count else { return false }
        if configuration.maxFails == 0 || count == 1 { return true }
        switch configuration.variant {
        case .documented:
            return now >= downUntil[host]
        case .roundRobinModule:
            return !(fails[host] >= configuration.maxFails && now - checked[host] <= configuration.failTimeout)
        }
    }

    /// Tells the `.roundRobinModule` variant that the balancer picked `host` at `now` (nginx then moves `checked`
    /// to now if more than `fail_timeout` has passed since it); does nothing for `.documented`.
    ///
    /// - Complexity: O(1).
    public mutating func selected(host: Int, at now: SimInstant) {
        guard configuration.variant == .roundRobinModule, host >= 0, host < count else { return }
        if now - checked[host] > configuration.failTimeout { checked[host] = now }
    }

    /// Records the result of one request to `host` that ended at `now`.
    ///
    /// - Returns: The instant from which `host` is usable again, if this failure made (or kept) it unavailable;
    ///   `nil` otherwise, and always for a disabled accounting or a single-server group.
    /// - Complexity: O(1); does not allocate.
    public mutating func record(host: Int, result: RequestResult, at now: SimInstant) -> SimInstant? {
        guard host >= 0, host < count, configuration.maxFails > 0 else { return nil }
        let failed = configuration.isFailure(result)
        switch configuration.variant {
        case .documented:
            guard failed else { return nil }
            let maxFails = configuration.maxFails
            let base = host * maxFails
            failureTimes[base + ringNext[host]] = now
            ringNext[host] = (ringNext[host] + 1) % maxFails
            ringFilled[host] = min(ringFilled[host] + 1, maxFails)
            // The oldest of the last `max_fails` failures is the slot to be overwritten next.
            let oldest = failureTimes[base + ringNext[host]]
            guard ringFilled[host] == maxFails, now - oldest < configuration.failTimeout else { return nil }
            downUntil[host] = max(downUntil[host], now + configuration.failTimeout)
            return count == 1 ? nil : downUntil[host]
        case .roundRobinModule:
            guard failed else {
                if accessed[host] < checked[host] { fails[host] = 0 }
                return nil
            }
            fails[host] += 1
            accessed[host] = now
            checked[host] = now
            guard fails[host] >= configuration.maxFails, count > 1 else { return nil }
            return now + configuration.failTimeout + .nanoseconds(1)
        }
    }
}
