//! rkt's closed device policy as a cgroup2 eBPF program (BPF_PROG_TYPE_CGROUP_DEVICE), for
//! hosts where the v1 `devices` controller is absent (docs/stage-contract.md, "Devices"). The
//! rules are the v1 controller's (`c 1:3 rwm`, `c 136:* rw`); the program allows an access
//! when one rule covers its type, major, minor and every requested access, and refuses the
//! rest, as runc's and crun's device filters do.
use anyhow::{bail, Result};

/// One allow rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rule {
    /// `BPF_DEVCG_DEV_CHAR` (2) or `BPF_DEVCG_DEV_BLOCK` (1).
    pub kind: u32,
    pub major: Option<u32>,
    pub minor: Option<u32>,
    /// `BPF_DEVCG_ACC_MKNOD` (1) | `READ` (2) | `WRITE` (4).
    pub access: u32,
}

pub fn parse_rule(rule: &str) -> Result<Rule> {
    let parts: Vec<&str> = rule.split(' ').collect();
    let [kind, numbers, access] = parts.as_slice() else {
        bail!("bad device rule {rule:?}: expected TYPE MAJOR:MINOR ACCESS");
    };
    let kind = match *kind {
        "c" => 2,
        "b" => 1,
        _ => bail!("bad device rule {rule:?}: type is c or b"),
    };
    let Some((major, minor)) = numbers.split_once(':') else {
        bail!("bad device rule {rule:?}: expected MAJOR:MINOR");
    };
    let number = |n: &str| -> Result<Option<u32>> {
        if n == "*" {
            return Ok(None);
        }
        match n.parse() {
            Ok(v) => Ok(Some(v)),
            Err(_) => bail!("bad device rule {rule:?}: {n:?} is not a number or *"),
        }
    };
    let mut bits = 0;
    for c in access.chars() {
        bits |= match c {
            'm' => 1,
            'r' => 2,
            'w' => 4,
            _ => bail!("bad device rule {rule:?}: access is made of r, w and m"),
        };
    }
    Ok(Rule {
        kind,
        major: number(major)?,
        minor: number(minor)?,
        access: bits,
    })
}

/// One eBPF instruction, as `struct bpf_insn`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Insn {
    pub code: u8,
    /// dst in the low nibble, src in the high one.
    pub regs: u8,
    pub off: i16,
    pub imm: i32,
}

impl Insn {
    fn new(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> Insn {
        Insn {
            code,
            regs: (src << 4) | dst,
            off,
            imm,
        }
    }

    pub fn to_bytes(self) -> [u8; 8] {
        let mut b = [0u8; 8];
        b[0] = self.code;
        b[1] = self.regs;
        b[2..4].copy_from_slice(&self.off.to_ne_bytes());
        b[4..8].copy_from_slice(&self.imm.to_ne_bytes());
        b
    }
}

const LDX_MEM_W: u8 = 0x61;
const ALU32_AND_K: u8 = 0x54;
const ALU32_RSH_K: u8 = 0x74;
const ALU32_MOV_X: u8 = 0xbc;
const ALU64_MOV_K: u8 = 0xb7;
const JNE_K: u8 = 0x55;
const JNE_X: u8 = 0x5d;
const EXIT: u8 = 0x95;

/// The program for `rules`: r2 = type, r3 = access, r4 = major, r5 = minor; each rule jumps
/// to the next one on the first mismatch and returns 1 when everything matched.
pub fn program(rules: &[Rule]) -> Vec<Insn> {
    let mut p = vec![
        Insn::new(LDX_MEM_W, 2, 1, 0, 0),
        Insn::new(ALU32_AND_K, 2, 0, 0, 0xffff),
        Insn::new(LDX_MEM_W, 3, 1, 0, 0),
        Insn::new(ALU32_RSH_K, 3, 0, 0, 16),
        Insn::new(LDX_MEM_W, 4, 1, 4, 0),
        Insn::new(LDX_MEM_W, 5, 1, 8, 0),
    ];
    for rule in rules {
        // Each check jumps past the rest of this rule: (checks after it) + 2 (r0 = 1, exit).
        let mut checks: Vec<Box<dyn Fn(i16) -> Vec<Insn>>> = Vec::new();
        let kind = rule.kind as i32;
        checks.push(Box::new(move |skip| {
            vec![Insn::new(JNE_K, 2, 0, skip, kind)]
        }));
        if rule.access != 7 {
            let access = rule.access as i32;
            checks.push(Box::new(move |skip| {
                vec![
                    Insn::new(ALU32_MOV_X, 1, 3, 0, 0),
                    Insn::new(ALU32_AND_K, 1, 0, 0, access),
                    Insn::new(JNE_X, 1, 3, skip, 0),
                ]
            }));
        }
        if let Some(major) = rule.major {
            checks.push(Box::new(move |skip| {
                vec![Insn::new(JNE_K, 4, 0, skip, major as i32)]
            }));
        }
        if let Some(minor) = rule.minor {
            checks.push(Box::new(move |skip| {
                vec![Insn::new(JNE_K, 5, 0, skip, minor as i32)]
            }));
        }
        // Lay the checks out back to front so each knows how far the rule's end is.
        let mut tail = vec![
            Insn::new(ALU64_MOV_K, 0, 0, 0, 1),
            Insn::new(EXIT, 0, 0, 0, 0),
        ];
        for check in checks.iter().rev() {
            // The jump is the check's last instruction: skip what follows it in the rule.
            let mut insns = check(tail.len() as i16);
            insns.extend(tail);
            tail = insns;
        }
        p.extend(tail);
    }
    p.push(Insn::new(ALU64_MOV_K, 0, 0, 0, 0));
    p.push(Insn::new(EXIT, 0, 0, 0, 0));
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs `prog` like the kernel would for one access (the subset of eBPF it uses).
    fn eval(prog: &[Insn], kind: u32, access: u32, major: u32, minor: u32) -> u64 {
        let ctx = [access << 16 | kind, major, minor];
        let mut r = [0u64; 11];
        let mut pc = 0usize;
        loop {
            let i = prog[pc];
            let (dst, src) = ((i.regs & 0xf) as usize, (i.regs >> 4) as usize);
            pc += 1;
            match i.code {
                LDX_MEM_W => r[dst] = u64::from(ctx[i.off as usize / 4]),
                ALU32_AND_K => r[dst] = (r[dst] as u32 & i.imm as u32) as u64,
                ALU32_RSH_K => r[dst] = ((r[dst] as u32) >> i.imm) as u64,
                ALU32_MOV_X => r[dst] = r[src] as u32 as u64,
                ALU64_MOV_K => r[dst] = i.imm as i64 as u64,
                JNE_K if r[dst] != i.imm as i64 as u64 => pc += i.off as usize,
                JNE_X if r[dst] != r[src] => pc += i.off as usize,
                JNE_K | JNE_X => {}
                EXIT => return r[0],
                other => panic!("unexpected opcode {other:#x}"),
            }
        }
    }

    #[test]
    fn allows_exactly_what_the_rules_say() {
        let rules: Vec<Rule> = ["c 1:3 rwm", "c 5:2 rw", "c 136:* rw", "b 8:0 r"]
            .iter()
            .map(|r| parse_rule(r).unwrap())
            .collect();
        let prog = program(&rules);
        let (c, b) = (2, 1);
        let (m, rd, wr) = (1, 2, 4);
        assert_eq!(eval(&prog, c, m, 1, 3), 1, "mknod /dev/null");
        assert_eq!(eval(&prog, c, rd | wr, 1, 3), 1);
        assert_eq!(eval(&prog, c, rd | wr, 5, 2), 1, "open ptmx");
        assert_eq!(eval(&prog, c, m, 5, 2), 0, "mknod ptmx");
        assert_eq!(eval(&prog, c, wr, 136, 7), 1, "any pty");
        assert_eq!(eval(&prog, c, m, 10, 237), 0, "loop-control");
        assert_eq!(eval(&prog, b, rd, 8, 0), 1);
        assert_eq!(eval(&prog, b, wr, 8, 0), 0, "read-only block device");
        assert_eq!(eval(&prog, b, rd, 1, 3), 0, "block 1:3 is not char 1:3");
        assert_eq!(eval(&program(&[]), c, rd, 1, 3), 0, "no rules, no access");
    }

    #[test]
    fn bad_rules_are_errors() {
        for bad in ["x 1:3 rwm", "c 1-3 rw", "c a:3 rw", "c 1:3 rwx", "c 1:3"] {
            assert!(parse_rule(bad).is_err(), "{bad}");
        }
    }
}
