//===----------------------------------------------------------------------===//
// meshsim — SimRandom
//===----------------------------------------------------------------------===//

internal import CGSL
import SimCore

/// One independent, seeded stream of random numbers, backed by a GSL generator (MT19937).
///
/// Each component of a model (a client's arrivals, a replica's service times, a network link, a balancer) owns its
/// own stream, seeded from (scenario seed, replication, component key) by ``StreamSeed``. Two variants of a scenario
/// therefore see the same arrivals and the same service-time draws (common random numbers), and adding a component
/// does not shift the others. The stream also conforms to `RandomNumberGenerator`, so policy modules can draw from it
/// without knowing about GSL.
///
/// A stream is confined to one replication's thread; it is not `Sendable`.
public final class RandomStream: RandomNumberGenerator {
    let generator: UnsafeMutablePointer<gsl_rng>
    /// The seed this stream was started from.
    public let seed: UInt64

    /// Creates a stream started from `seed`.
    public init(seed: UInt64) {
        guard let generator = gsl_rng_alloc(meshsim_rng_type_mt19937()) else {
            fatalError("GSL could not allocate a random number generator (out of memory)")
        }
        self.generator = generator
        self.seed = seed
        // MT19937 takes an unsigned long seed; 0 selects GSL's default, so fold it to a non-zero value.
        let folded = UInt(truncatingIfNeeded: seed ^ (seed >> 32))
        gsl_rng_set(generator, folded == 0 ? 4357 : folded)
    }

    /// Creates the stream named `key` for replication `replication` of a run seeded with `seed`.
    public convenience init(seed: UInt64, replication: Int, key: String) {
        self.init(seed: StreamSeed.derive(seed: seed, replication: replication, key: key))
    }

    deinit { gsl_rng_free(generator) }

    /// 64 random bits, from two 32-bit MT19937 outputs.
    public func next() -> UInt64 {
        let high = UInt64(gsl_rng_get(generator)) & 0xFFFF_FFFF
        let low = UInt64(gsl_rng_get(generator)) & 0xFFFF_FFFF
        return high << 32 | low
    }

    /// The generator's next raw 32-bit output.
    public func next32() -> UInt32 { UInt32(truncatingIfNeeded: gsl_rng_get(generator)) }

    /// A uniform draw in [0, 1).
    public func uniform() -> Double { gsl_rng_uniform(generator) }

    /// A uniform draw in (0, 1).
    public func uniformPositive() -> Double { gsl_rng_uniform_pos(generator) }

    /// A uniform integer in [0, bound), `bound` > 0.
    public func uniformInt(below bound: Int) -> Int {
        Int(gsl_rng_uniform_int(generator, UInt(bound)))
    }

    /// Whether an event of probability `p` happens (no draw is made when `p` is 0 or 1).
    public func bernoulli(_ p: Double) -> Bool {
        if p <= 0 { return false }
        if p >= 1 { return true }
        return gsl_rng_uniform(generator) < p
    }

    /// An exponential draw with the given mean.
    public func exponential(mean: Double) -> Double { gsl_ran_exponential(generator, mean) }

    /// A Gaussian draw with mean 0 and the given standard deviation.
    public func gaussian(sigma: Double) -> Double { gsl_ran_gaussian_ziggurat(generator, sigma) }

    /// A lognormal draw: exp of a normal with mean `mu` and standard deviation `sigma`.
    public func lognormal(mu: Double, sigma: Double) -> Double { gsl_ran_lognormal(generator, mu, sigma) }

    /// A gamma draw with the given shape and scale.
    public func gamma(shape: Double, scale: Double) -> Double { gsl_ran_gamma(generator, shape, scale) }

    /// A Weibull draw with the given shape and scale.
    public func weibull(shape: Double, scale: Double) -> Double { gsl_ran_weibull(generator, scale, shape) }

    /// A Pareto draw with the given shape and scale (the minimum value).
    public func pareto(shape: Double, scale: Double) -> Double { gsl_ran_pareto(generator, shape, scale) }
}
