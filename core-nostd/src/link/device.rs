//! The smoltcp `phy::Device` over `Frames`, with the ARP/NDP hook.
