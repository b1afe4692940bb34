// Compute units of the oracle on real SBF: registry + oracle .so files (built with
// ../shared/tools/sbf/build.sh ... --features sbf-upstream) in litesvm 1.5. Not part of CI.
//
//   node tests/sbf/oracle_cu.mjs <libregistry.so> <liboracle.so> [readings]
//
// Run from a directory where `litesvm` and `@solana/kit` resolve (setup.sh installs them
// under $SBF_HOME/js; e.g. NODE_PATH=$SBF_HOME/js/node_modules).
import { LiteSVM, FailedTransactionMetadata } from "litesvm";
import {
  generateKeyPairSigner, generateKeyPair, signBytes, getAddressFromPublicKey, lamports, pipe,
  createTransactionMessage, setTransactionMessageFeePayerSigner, appendTransactionMessageInstructions,
  signTransactionMessageWithSigners, address, AccountRole, getAddressEncoder, getProgramDerivedAddress,
} from "@solana/kit";
import { createHash, randomBytes } from "node:crypto";

const [regSo, oraSo, countArg] = process.argv.slice(2);
const N = Number(countArg ?? 25);
const REG = address("CdzpTgxzogHAaGzUjvzoqS99BVbXFz4oPg69uPv9oGDj");
const ORA = address("EsBoZvjvba2DKd6uoiKssseWpPYKkabLNfaeLBBPSP6i");
const SYS = address("11111111111111111111111111111111");
const IXS = address("Sysvar1nstructions1111111111111111111111111");
const ED = address("Ed25519SigVerify111111111111111111111111111");
const CB = address("ComputeBudget111111111111111111111111111111");
const enc = getAddressEncoder();
const disc = (s) => createHash("sha256").update(s).digest().subarray(0, 8);
const u8 = (v) => Buffer.from([v]);
const u16 = (v) => { const b = Buffer.alloc(2); b.writeUInt16LE(v); return b; };
const u32 = (v) => { const b = Buffer.alloc(4); b.writeUInt32LE(v); return b; };
const u64 = (v) => { const b = Buffer.alloc(8); b.writeBigUInt64LE(BigInt(v)); return b; };
const pda = async (seeds, program) => (await getProgramDerivedAddress({ programAddress: program, seeds }))[0];
const W = AccountRole.WRITABLE, R = AccountRole.READONLY, WS = AccountRole.WRITABLE_SIGNER, RS = AccountRole.READONLY_SIGNER;

const svm = new LiteSVM();
svm.addProgramFromFile(REG, regSo);
svm.addProgramFromFile(ORA, oraSo);
const payer = await generateKeyPairSigner();
svm.airdrop(payer.address, lamports(1_000_000_000_000n));

async function send(label, ixs, signers = []) {
  const tx = await pipe(createTransactionMessage({ version: 0 }),
    (t) => setTransactionMessageFeePayerSigner(payer, t),
    (t) => svm.setTransactionMessageLifetimeUsingLatestBlockhash(t),
    (t) => appendTransactionMessageInstructions(ixs, t),
    (t) => signTransactionMessageWithSigners(t));
  const r = svm.sendTransaction(tx);
  svm.expireBlockhash();
  if (r instanceof FailedTransactionMetadata) {
    console.log(`[${label}] FAILED:`, r.err(), "\n  " + r.meta().logs().join("\n  "));
    process.exit(1);
  }
  return r;
}
const me = { address: payer.address, role: WS, signer: payer };

// SFDI: 36 leading bits in decimal, then the digit-sum check digit (IEEE 2030.5 6.3.3).
function sfdi(lfdi) {
  const lead = (BigInt(lfdi.readUInt32BE(0)) << 4n) | BigInt(lfdi[4] >> 4);
  const sum = [...lead.toString()].reduce((a, c) => a + Number(c), 0);
  return lead * 10n + BigInt((10 - (sum % 10)) % 10);
}

const campus = await pda(["campus"], REG);
const name = Buffer.from("CU campus");
let r = await send("initialize_campus", [{ programAddress: REG, data: Buffer.concat([disc("global:initialize_campus"), u32(name.length), name]),
  accounts: [{ address: campus, role: W }, me, { address: SYS, role: R }] }]);
console.log(`initialize_campus: ${r.computeUnitsConsumed()} CU`);

const meters = [];
for (let i = 0; i < N; i++) {
  const owner = await generateKeyPairSigner();
  svm.airdrop(owner.address, lamports(1_000_000_000n));
  const lfdi = randomBytes(20);
  const meter = await pda(["meter", lfdi], REG);
  const data = Buffer.concat([disc("global:register_meter"), lfdi, u64(sfdi(lfdi)), u8(0), u64(50_000), u64(30_000), u64(100_000)]);
  r = await send("register_meter", [{ programAddress: REG, data, accounts: [
    { address: campus, role: W }, { address: payer.address, role: RS, signer: payer },
    { address: owner.address, role: WS, signer: owner }, { address: meter, role: W }, { address: SYS, role: R }] }]);
  if (i === 0) console.log(`register_meter: ${r.computeUnitsConsumed()} CU`);
  meters.push({ lfdi, meter, state: await pda(["meter_state", lfdi], ORA) });
}

const attestor = await generateKeyPair();
const attestorAddress = await getAddressFromPublicKey(attestor.publicKey);
const config = await pda(["oracle_config"], ORA);
r = await send("initialize_oracle", [{ programAddress: ORA,
  data: Buffer.concat([disc("global:initialize_oracle"), u32(1), Buffer.from(enc.encode(attestorAddress)), u8(1), u32(60), u32(60), u16(1000)]),
  accounts: [{ address: config, role: W }, { address: campus, role: R }, me, { address: SYS, role: R }] }]);
console.log(`initialize_oracle: ${r.computeUnitsConsumed()} CU`);
for (const m of meters) {
  r = await send("init_meter_state", [{ programAddress: ORA, data: disc("global:init_meter_state"),
    accounts: [{ address: m.meter, role: R }, { address: m.state, role: W }, me, { address: SYS, role: R }] }]);
}
console.log(`init_meter_state: ${r.computeUnitsConsumed()} CU`);

// One batch of N readings in the oracle's attestation format.
const now = Number(svm.getClock().unixTimestamp);
const readings = meters.map((_, i) => Buffer.concat([u16(i), u32(now), u64(1_000_000 + i), u64(2_000_000 + i), u8(0)]));
const message = Buffer.concat([Buffer.from("gridtokenx-rdg-1"), Buffer.from(enc.encode(ORA)), Buffer.from(enc.encode(campus)), u64(1), u16(N), ...readings]);
const signature = Buffer.from(await signBytes(attestor.privateKey, message));
const keyBytes = Buffer.from(enc.encode(attestorAddress));
const offsets = Buffer.concat([u16(16 + 32), u16(0xffff), u16(16), u16(0xffff), u16(16 + 32 + 64), u16(message.length), u16(0xffff)]);
const edData = Buffer.concat([u8(1), u8(0), offsets, keyBytes, signature, message]);
const budget = { programAddress: CB, data: Buffer.concat([u8(2), u32(1_400_000)]), accounts: [] };
const ed = { programAddress: ED, data: edData, accounts: [] };
const submit = { programAddress: ORA, data: Buffer.concat([disc("global:submit_readings"), u8(1)]), accounts: [
  { address: config, role: W }, { address: IXS, role: R }, { address: payer.address, role: RS, signer: payer },
  ...meters.flatMap((m) => [{ address: m.meter, role: R }, { address: m.state, role: W }])] };
r = await send("submit_readings", [budget, ed, submit]);
console.log(`submit_readings with ${N} readings (first batch, sets baselines): ${r.computeUnitsConsumed()} CU (transaction, incl. Ed25519 and compute-budget instructions)`);

// A second batch, 15 minutes later, through the plausibility checks.
svm.warpToSlot(svm.getClock().slot + 3000n);
const clock = svm.getClock(); clock.unixTimestamp = BigInt(now + 900); svm.setClock(clock);
const readings2 = meters.map((_, i) => Buffer.concat([u16(i), u32(now + 900), u64(1_000_000 + i + 5_000), u64(2_000_000 + i + 3_000), u8(0)]));
const message2 = Buffer.concat([Buffer.from("gridtokenx-rdg-1"), Buffer.from(enc.encode(ORA)), Buffer.from(enc.encode(campus)), u64(2), u16(N), ...readings2]);
const signature2 = Buffer.from(await signBytes(attestor.privateKey, message2));
const ed2 = { programAddress: ED, data: Buffer.concat([u8(1), u8(0), offsets, keyBytes, signature2, message2]), accounts: [] };
r = await send("submit_readings 2", [budget, ed2, submit]);
console.log(`submit_readings with ${N} readings (second batch): ${r.computeUnitsConsumed()} CU`);
