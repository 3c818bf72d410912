//===----------------------------------------------------------------------===//
// meshsim — SimCore
//===----------------------------------------------------------------------===//

/// Derives independent, stable seeds for random streams, as ns-3 does with seed × run × stream.
///
/// A stream's seed is a fixed function of (scenario seed, replication, stream key): FNV-1a over the key's UTF-8
/// bytes, mixed with the seed and replication by SplitMix64. Never `Hasher`, which is randomized per process. So
/// adding a component, or a variant that uses a different policy, leaves every other component's numbers unchanged.
public enum StreamSeed {
    /// The 64-bit FNV-1a hash of `key`.
    public static func fnv1a(_ key: String) -> UInt64 {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in key.utf8 {
            hash ^= UInt64(byte)
            hash = hash &* 0x0000_0100_0000_01B3
        }
        return hash
    }

    /// One step of SplitMix64: a bijective mix with good avalanche.
    public static func splitMix64(_ value: UInt64) -> UInt64 {
        var z = value &+ 0x9E37_79B9_7F4A_7C15
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// The seed of the stream named `key` in replication `replication` of a run seeded with `seed`.
    public static func derive(seed: UInt64, replication: Int, key: String) -> UInt64 {
        let a = splitMix64(seed)
        let b = splitMix64(a ^ UInt64(truncatingIfNeeded: replication) &* 0xD6E8_FEB8_6659_FD93)
        return splitMix64(b ^ fnv1a(key))
    }
}
