//! `ipmi`: the bootstrap channel's codecs on arbitrary bytes.

use bmclink_core::ipmi::{BootstrapAccount, BootstrapAnswer, DeviceId};

use crate::ipmi_bmc::{frame_message, Deframer, Frame};

/// The first byte picks a split point; the rest is parsed as a
/// "Get Device ID" response, as a DSP0270 response, and fed to the QEMU
/// external-BMC deframer in two parts.
///
/// Checks: nothing panics; a parsed account re-encodes to exactly the input
/// (`[0x00, 0x52, user, NUL.., password, NUL..]`) and its fields are 1-16
/// printable ASCII bytes; a parsed device ID carries the input's firmware
/// bytes; every deframed request, framed again, deframes to itself.
pub fn ipmi(data: &[u8]) {
    let Some((&split, rsp)) = data.split_first() else {
        return;
    };
    if let Ok(d) = DeviceId::parse(rsp) {
        assert_eq!(rsp[0], 0);
        assert_eq!(d.firmware_major, rsp[3] & 0x7F);
        assert!(rsp.len() == 12 || rsp.len() == 16);
        assert_eq!(d.aux.is_some(), rsp.len() == 16);
    }
    if let Ok(a) = BootstrapAccount::parse(rsp) {
        let mut again = vec![0x00, 0x52];
        for field in [a.user(), a.password()] {
            assert!((1..=16).contains(&field.len()), "{field:?}");
            assert!(field.bytes().all(|b| (0x21..=0x7E).contains(&b)));
            let mut f = [0u8; 16];
            f[..field.len()].copy_from_slice(field.as_bytes());
            again.extend_from_slice(&f);
        }
        assert_eq!(again, rsp);
    }
    match BootstrapAnswer::parse(rsp) {
        Ok(BootstrapAnswer::Disabled) => assert_eq!(rsp.first(), Some(&0x80)),
        Ok(BootstrapAnswer::NotImplemented) => assert_eq!(rsp.first(), Some(&0xC1)),
        Ok(BootstrapAnswer::Account(_)) => assert_eq!(rsp.len(), 34),
        Err(_) => {}
    }
    let cut = usize::from(split).min(rsp.len());
    let mut deframer = Deframer::default();
    let mut frames = deframer.push(&rsp[..cut]);
    frames.extend(deframer.push(&rsp[cut..]));
    for frame in frames {
        if let Frame::Request {
            msgid,
            netfn,
            lun,
            cmd,
            ref data,
        } = frame
        {
            let body = [&[(netfn << 2) | lun, cmd][..], data].concat();
            let again = Deframer::default().push(&frame_message(msgid, &body));
            assert_eq!(again, vec![frame]);
        }
    }
}

/// Seeds: the answers a BMC gives, each also cut short, and a stream from QEMU.
pub fn ipmi_seeds() -> Vec<(&'static str, Vec<u8>)> {
    let mut account = vec![0x00, 0x52];
    for field in [&b"bmclink-boot-01"[..], b"Zq8#x2LmP0v9wYt4"] {
        let mut f = [0u8; 16];
        f[..field.len()].copy_from_slice(field);
        account.extend_from_slice(&f);
    }
    let device_id = vec![
        0x00, 0x20, 0x81, 0x03, 0x30, 0x02, 0xBF, 0xA2, 0x02, 0x00, 0x00, 0x01, 30, 30, 0, 0,
    ];
    // QEMU's version and capabilities commands, then Get Device ID (msgid 1)
    // and a DSP0270 request with an escaped byte.
    let mut stream = vec![0xFF, 0x01, 0xA1, 0x08, 0x3F, 0xA1];
    stream.extend(frame_message(1, &[0x18, 0x01]));
    stream.extend(frame_message(0xA0, &[0xB0, 0x02, 0x52, 0xA5]));
    let with_split = |s: u8, v: &[u8]| [&[s][..], v].concat();
    vec![
        ("account", with_split(0, &account)),
        ("account_short", with_split(0, &account[..20])),
        ("device_id", with_split(0, &device_id)),
        ("device_id_no_aux", with_split(0, &device_id[..12])),
        ("disabled", with_split(0, &[0x80])),
        ("not_implemented", with_split(0, &[0xC1])),
        ("qemu_stream", with_split(9, &stream)),
    ]
}
