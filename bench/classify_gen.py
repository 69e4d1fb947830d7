#!/usr/bin/env python3
"""Deterministic mixed corpus for the classify benchmark (not a test fixture).

Usage: classify_gen.py OUTDIR [SIZE_MIB] [SEED]     (defaults: 1024 MiB, seed 20261125)

Mix by bytes (approx): 30% CSV customer exports, 20% JSON lines, 25% application
logs (Chinese and English), 10% SQL dumps, 5% GB18030 text, 5% gzip'd CSV/logs,
5% binary blobs. Planted values are valid identifiers (check digits computed)
mixed with invalid lookalikes, at densities seen in real exports: every CSV row
holds an ID, a phone, a card and an e-mail; about one log line in five holds one.
"""
import gzip
import os
import random
import sys

OUT = sys.argv[1] if len(sys.argv) > 1 else "/tmp/dlc-classify-corpus"
SIZE = int(sys.argv[2]) if len(sys.argv) > 2 else 1024
SEED = int(sys.argv[3]) if len(sys.argv) > 3 else 20261125
MiB = 1 << 20
rng = random.Random(SEED)

W = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2]
REGIONS = ["110105", "310104", "440305", "330106", "510107", "620102", "650102", "370202"]


def rid(valid=True):
    f = "%s%04d%02d%02d%03d" % (rng.choice(REGIONS), rng.randrange(1950, 2006),
                                rng.randrange(1, 13), rng.randrange(1, 29), rng.randrange(1000))
    c = "10X98765432"[sum(int(a) * b for a, b in zip(f, W)) % 11]
    if not valid:
        c = "0" if c != "0" else "1"
    return f + c


def luhn_ok(s):
    t = 0
    for i, ch in enumerate(reversed(s)):
        v = int(ch)
        if i % 2:
            v *= 2
            if v > 9:
                v -= 9
        t += v
    return t % 10 == 0


def card(valid=True):
    p = rng.choice(["62", "62", "4", "5"])
    n = rng.choice([16, 19]) if p == "62" else 16
    body = p + "".join(rng.choice("0123456789") for _ in range(n - len(p) - 1))
    for c in "0123456789":
        if luhn_ok(body + c) == valid:
            return body + c


def mobile():
    return "1" + rng.choice(["38", "39", "58", "86", "88", "99", "77"]) + "%08d" % rng.randrange(10**8)


def email():
    return "%s.%s%d@%s" % (rng.choice(["zhang", "li", "wang", "chen", "liu", "alice", "bob"]),
                           rng.choice(["wei", "fang", "min", "jun", "smith"]), rng.randrange(100),
                           rng.choice(["example.com", "bank.com.cn", "mail.example.org"]))


def pool(fn, n=20000):
    return [fn() for _ in range(n)]


IDS, BAD_IDS = pool(rid), pool(lambda: rid(False))
CARDS, BAD_CARDS = pool(card), pool(lambda: card(False))
MOBILES, EMAILS = pool(mobile), pool(email)
WORDS = ("交易 成功 请求 响应 用户 会话 账务 提交 回滚 超时 上游 金额 状态 正常 备注 "
         "request response user session token cache miss hit backend upstream timeout retry ok "
         "error warning info debug commit rollback transaction ledger branch amount status").split()
NAMES = ["张伟", "王芳", "李娜", "刘洋", "陈静", "杨磊", "赵敏", "黄强", "alice", "bob", "carol"]


def words(k):
    return " ".join(rng.choice(WORDS) for _ in range(k))


def csv_text(nbytes):
    out = ["id,name,id_no,mobile,card_no,email,amount,branch,created\n"]
    size = len(out[0])
    i = 0
    while size < nbytes:
        i += 1
        row = "%d,%s,%s,%s,%s,%s,%.2f,%s,2026-%02d-%02d %02d:%02d:%02d\n" % (
            i, rng.choice(NAMES), rng.choice(IDS) if i % 10 else rng.choice(BAD_IDS),
            rng.choice(MOBILES), rng.choice(CARDS) if i % 10 else rng.choice(BAD_CARDS),
            rng.choice(EMAILS), rng.random() * 100000, rng.choice(["北京分行", "上海分行", "深圳分行"]),
            rng.randrange(1, 13), rng.randrange(1, 29), rng.randrange(24), rng.randrange(60),
            rng.randrange(60))
        out.append(row)
        size += len(row.encode())
    return "".join(out)


def jsonl_text(nbytes):
    out, size, i = [], 0, 0
    while size < nbytes:
        i += 1
        line = ('{"seq": %d, "event": "%s", "user": {"name": "%s", "phone": "%s", "id_card": "%s"}, '
                '"amount": %.2f, "note": "%s", "ip": "10.%d.%d.%d"}\n') % (
            i, rng.choice(WORDS), rng.choice(NAMES), rng.choice(MOBILES), rng.choice(IDS),
            rng.random() * 1000, words(rng.randrange(4, 14)), rng.randrange(256), rng.randrange(256),
            rng.randrange(256))
        out.append(line)
        size += len(line.encode())
    return "".join(out)


def log_text(nbytes):
    out, size = [], 0
    while size < nbytes:
        r = rng.random()
        extra = ""
        if r < 0.05:
            extra = " 客户证件号码%s已核验" % rng.choice(IDS)
        elif r < 0.10:
            extra = " 卡号%s扣款成功" % rng.choice(CARDS)
        elif r < 0.15:
            extra = " 联系电话 %s" % rng.choice(MOBILES)
        elif r < 0.20:
            extra = " notify %s" % rng.choice(EMAILS)
        elif r < 0.21:
            extra = " db_password=%s" % "".join(rng.choice("abcdefXYZ0123!@") for _ in range(12))
        line = "2026-11-%02d %02d:%02d:%02d.%03d [%s] %s: %s%s trace=%016x\n" % (
            rng.randrange(1, 29), rng.randrange(24), rng.randrange(60), rng.randrange(60),
            rng.randrange(1000), rng.choice(["INFO", "WARN", "ERROR", "DEBUG"]), rng.choice(WORDS),
            words(rng.randrange(4, 16)), extra, rng.getrandbits(64))
        out.append(line)
        size += len(line.encode())
    return "".join(out)


def sql_text(nbytes):
    out = ["CREATE TABLE customer (id bigint, name varchar(32), id_no char(18), card varchar(19));\n"]
    size = len(out[0])
    i = 0
    while size < nbytes:
        i += 1
        line = "INSERT INTO customer VALUES (%d, '%s', '%s', '%s');\n" % (
            i, rng.choice(NAMES), rng.choice(IDS), rng.choice(CARDS))
        out.append(line)
        size += len(line.encode())
    return "".join(out)


def sizes(total, lo, hi):
    left = total
    while left > 0:
        s = min(left, rng.randrange(lo, hi))
        yield s
        left -= s


def main():
    os.makedirs(OUT, exist_ok=True)
    total = SIZE * MiB
    plan = [("csv", 0.30, csv_text, ".csv"), ("jsonl", 0.20, jsonl_text, ".jsonl"),
            ("log", 0.25, log_text, ".log"), ("sql", 0.10, sql_text, ".sql")]
    n = 0
    for kind, share, fn, ext in plan:
        for s in sizes(int(total * share), 1 * MiB, 48 * MiB):
            with open(os.path.join(OUT, "%s_%04d%s" % (kind, n, ext)), "w", encoding="utf-8") as f:
                f.write(fn(s))
            n += 1
    for s in sizes(int(total * 0.05), 1 * MiB, 16 * MiB):
        with open(os.path.join(OUT, "gbk_%04d.log" % n), "wb") as f:
            f.write(log_text(s).encode("gb18030"))
        n += 1
    for s in sizes(int(total * 0.05), 1 * MiB, 16 * MiB):
        fn = csv_text if n % 2 else log_text
        with gzip.open(os.path.join(OUT, "gz_%04d%s.gz" % (n, ".csv" if n % 2 else ".log")), "wb",
                       compresslevel=1) as f:
            f.write(fn(s).encode())
        n += 1
    for s in sizes(int(total * 0.05), 1 * MiB, 16 * MiB):
        with open(os.path.join(OUT, "blob_%04d.bin" % n), "wb") as f:
            f.write(rng.randbytes(s))
        n += 1
    tot = sum(os.path.getsize(os.path.join(OUT, f)) for f in os.listdir(OUT))
    print("classify corpus: %d files, %.1f MiB on disk in %s (seed %d)" % (n, tot / MiB, OUT, SEED))


main()
