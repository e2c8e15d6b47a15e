;; CRC-32C (Castagnoli) by slicing-by-8, for lib/store/crc32c.ts.
;; WebAssembly reads a 32-bit word in one load where JavaScript needs four
;; byte loads, and has no bounds checks to pay: ~1.8x the speed of the
;; JavaScript loop. Regenerate lib/store/crc32c-wasm.ts after a change with
;; `npm run build:wasm` (wat2wasm, from Debian's wabt).
;;
;; Memory layout (crc32c.ts relies on it):
;;   [0, 8192)  table k at 1024 * k: 256 u32, the CRC of a byte followed by k zero bytes
;;   [8192, ...) data: crc32c.ts's scratch and staging areas
(module
  (memory (export "memory") 1)

  ;; Fills the tables. Called once, before the first sum.
  (func (export "init")
    (local $n i32) (local $c i32) (local $bit i32) (local $t i32)
    ;; table 0: the byte's CRC, one bit at a time
    (loop $byte
      (local.set $c (local.get $n))
      (local.set $bit (i32.const 0))
      (loop $bits
        (local.set $c
          (select
            (i32.xor (i32.shr_u (local.get $c) (i32.const 1)) (i32.const 0x82f63b78))
            (i32.shr_u (local.get $c) (i32.const 1))
            (i32.and (local.get $c) (i32.const 1))))
        (local.set $bit (i32.add (local.get $bit) (i32.const 1)))
        (br_if $bits (i32.lt_u (local.get $bit) (i32.const 8))))
      (i32.store (i32.shl (local.get $n) (i32.const 2)) (local.get $c))
      (local.set $n (i32.add (local.get $n) (i32.const 1)))
      (br_if $byte (i32.lt_u (local.get $n) (i32.const 256))))
    ;; tables 1..7: one more zero byte each
    (local.set $n (i32.const 0))
    (loop $byte
      (local.set $c (i32.load (i32.shl (local.get $n) (i32.const 2))))
      (local.set $t (i32.const 1))
      (loop $tables
        (local.set $c
          (i32.xor
            (i32.load (i32.shl (i32.and (local.get $c) (i32.const 0xff)) (i32.const 2)))
            (i32.shr_u (local.get $c) (i32.const 8))))
        (i32.store
          (i32.add (i32.shl (local.get $t) (i32.const 10)) (i32.shl (local.get $n) (i32.const 2)))
          (local.get $c))
        (local.set $t (i32.add (local.get $t) (i32.const 1)))
        (br_if $tables (i32.lt_u (local.get $t) (i32.const 8))))
      (local.set $n (i32.add (local.get $n) (i32.const 1)))
      (br_if $byte (i32.lt_u (local.get $n) (i32.const 256)))))

  ;; The CRC-32C of memory[$at, $at + $length), continuing from $crc (0 for a fresh sum).
  (func $crc (export "crc") (param $at i32) (param $length i32) (param $crc i32) (result i32)
    (local $c i32) (local $end i32) (local $whole i32) (local $lo i32) (local $hi i32)
    (local.set $c (i32.xor (local.get $crc) (i32.const -1)))
    (local.set $end (i32.add (local.get $at) (local.get $length)))
    (local.set $whole (i32.sub (local.get $end) (i32.and (local.get $length) (i32.const 7))))
    ;; eight bytes a step: the sum so far folded into the first word, each byte through its table
    (block $done
      (loop $step
        (br_if $done (i32.ge_u (local.get $at) (local.get $whole)))
        (local.set $lo (i32.xor (local.get $c) (i32.load (local.get $at))))
        (local.set $hi (i32.load offset=4 (local.get $at)))
        (local.set $c
          (i32.xor
            (i32.xor
              (i32.xor
                (i32.load offset=7168 (i32.shl (i32.and (local.get $lo) (i32.const 0xff)) (i32.const 2)))
                (i32.load offset=6144 (i32.shl (i32.and (i32.shr_u (local.get $lo) (i32.const 8)) (i32.const 0xff)) (i32.const 2))))
              (i32.xor
                (i32.load offset=5120 (i32.shl (i32.and (i32.shr_u (local.get $lo) (i32.const 16)) (i32.const 0xff)) (i32.const 2)))
                (i32.load offset=4096 (i32.shl (i32.shr_u (local.get $lo) (i32.const 24)) (i32.const 2)))))
            (i32.xor
              (i32.xor
                (i32.load offset=3072 (i32.shl (i32.and (local.get $hi) (i32.const 0xff)) (i32.const 2)))
                (i32.load offset=2048 (i32.shl (i32.and (i32.shr_u (local.get $hi) (i32.const 8)) (i32.const 0xff)) (i32.const 2))))
              (i32.xor
                (i32.load offset=1024 (i32.shl (i32.and (i32.shr_u (local.get $hi) (i32.const 16)) (i32.const 0xff)) (i32.const 2)))
                (i32.load (i32.shl (i32.shr_u (local.get $hi) (i32.const 24)) (i32.const 2)))))))
        (local.set $at (i32.add (local.get $at) (i32.const 8)))
        (br $step)))
    ;; the last 0..7 bytes one at a time
    (block $done
      (loop $byte
        (br_if $done (i32.ge_u (local.get $at) (local.get $end)))
        (local.set $c
          (i32.xor
            (i32.load (i32.shl (i32.and (i32.xor (local.get $c) (i32.load8_u (local.get $at))) (i32.const 0xff)) (i32.const 2)))
            (i32.shr_u (local.get $c) (i32.const 8))))
        (local.set $at (i32.add (local.get $at) (i32.const 1)))
        (br $byte)))
    (i32.xor (local.get $c) (i32.const -1)))

  ;; How many bytes from $at, up to $end, are whole records of lib/store/record.ts
  ;; whose header check and payload checksum both hold: the frames are walked in
  ;; order and the walk stops at the first that is short or fails. Layout:
  ;; u32 length at 0, u32 payload CRC at 4, u32 header CRC of bytes 0..24 at 24,
  ;; payload at 28. A quarantined stand-in fails (its payload CRC field is a
  ;; magic), which only ends the walk: the reader checks what lies past it.
  (func (export "intactFrames") (param $at i32) (param $end i32) (result i32)
    (local $p i32) (local $length i32)
    (local.set $p (local.get $at))
    (block $done
      (loop $frame
        (br_if $done (i32.gt_u (i32.add (local.get $p) (i32.const 28)) (local.get $end)))
        (br_if $done (i32.ne (call $crc (local.get $p) (i32.const 24) (i32.const 0)) (i32.load offset=24 (local.get $p))))
        (local.set $length (i32.load (local.get $p)))
        (br_if $done (i32.gt_u (local.get $length) (i32.sub (local.get $end) (i32.add (local.get $p) (i32.const 28)))))
        (br_if $done (i32.ne (call $crc (i32.add (local.get $p) (i32.const 28)) (local.get $length) (i32.const 0)) (i32.load offset=4 (local.get $p))))
        (local.set $p (i32.add (local.get $p) (i32.add (i32.const 28) (local.get $length))))
        (br $frame)))
    (i32.sub (local.get $p) (local.get $at))))
