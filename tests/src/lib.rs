//! bmclink's simulation kit: a simulated Ethernet segment, a virtual clock, a
//! simulated host and a simulated BMC, all in one thread and in virtual time.
