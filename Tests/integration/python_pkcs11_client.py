"""python-pkcs11 as a client of one PKCS#11 module (test_python_pkcs11.sh runs it against
p11proxy and against SoftHSM2 directly and compares what it prints).

    python_pkcs11_client.py MODULE TOKEN_LABEL PIN OUT_DIR

Prints one "name: value" line per observation, in a fixed order, and writes the public keys
(DER) and signatures into OUT_DIR for OpenSSL to check. Exits 1 at the first failure, with
the exception on standard error; values that differ from run to run (keys, signatures,
serial numbers of new objects) are never printed; lines starting "library" describe the
module loaded, which p11proxy answers itself, and are not compared.
"""

import hashlib
import sys
from pathlib import Path

import pkcs11
from pkcs11 import Attribute, KeyType, Mechanism, ObjectClass
from pkcs11.util.ec import encode_ec_public_key, encode_ecdsa_signature, encode_named_curve_parameters
from pkcs11.util.rsa import encode_rsa_public_key

DATA = b"signed by python-pkcs11 through p11proxy\n"


def say(name, value):
    print(f"{name}: {value}", flush=True)


def main():
    module, label, pin, out = sys.argv[1], sys.argv[2], sys.argv[3], Path(sys.argv[4])
    (out / "data.txt").write_bytes(DATA)
    lib = pkcs11.lib(module)
    # C_GetInfo describes the library loaded (p11proxy answers it itself): shown, not compared.
    say("library", f"{lib.manufacturer_id} cryptoki {lib.cryptoki_version[0]}.{lib.cryptoki_version[1]}")
    slots = lib.get_slots(token_present=True)
    say("slots with a token", len(slots))
    say("token labels", ",".join(sorted(s.get_token().label for s in slots)))

    token = lib.get_token(token_label=label)
    say("token manufacturer", token.manufacturer_id)
    say("token model", token.model)
    mechanisms = sorted(int(m) for m in token.slot.get_mechanisms())
    say("mechanisms", len(mechanisms))
    say("mechanism numbers", ",".join(hex(m) for m in mechanisms))

    with token.open(user_pin=pin, rw=True) as session:
        # RSA: SHA256-RSA-PKCS sign on the token, verify on the token and (in the shell) with OpenSSL.
        rsa_pub, rsa_priv = session.generate_keypair(KeyType.RSA, 2048, store=True, label="py-rsa", id=b"\x11")
        say("rsa modulus bits", rsa_pub[Attribute.MODULUS_BITS])
        rsa_sig = rsa_priv.sign(DATA, mechanism=Mechanism.SHA256_RSA_PKCS)
        say("rsa signature bytes", len(rsa_sig))
        say("rsa verify on the token", rsa_pub.verify(DATA, rsa_sig, mechanism=Mechanism.SHA256_RSA_PKCS))
        say("rsa verify rejects other data",
            not rsa_pub.verify(DATA + b"x", rsa_sig, mechanism=Mechanism.SHA256_RSA_PKCS))
        (out / "rsa.pub.der").write_bytes(encode_rsa_public_key(rsa_pub))
        (out / "rsa.sig").write_bytes(rsa_sig)

        # RSA-PKCS encrypt with the public key, decrypt with the private key, both on the token.
        cipher = rsa_pub.encrypt(b"secret for python-pkcs11", mechanism=Mechanism.RSA_PKCS)
        say("rsa decrypts its own ciphertext",
            rsa_priv.decrypt(cipher, mechanism=Mechanism.RSA_PKCS) == b"secret for python-pkcs11")

        # EC P-256: SoftHSM2 2.6 offers raw CKM_ECDSA only, so the digest is made here.
        params = session.create_domain_parameters(
            KeyType.EC, {Attribute.EC_PARAMS: encode_named_curve_parameters("secp256r1")}, local=True)
        ec_pub, ec_priv = params.generate_keypair(store=True, label="py-ec", id=b"\x12")
        digest = hashlib.sha256(DATA).digest()
        ec_sig = ec_priv.sign(digest, mechanism=Mechanism.ECDSA)
        say("ecdsa signature bytes", len(ec_sig))
        say("ecdsa verify on the token", ec_pub.verify(digest, ec_sig, mechanism=Mechanism.ECDSA))
        (out / "ec.pub.der").write_bytes(encode_ec_public_key(ec_pub))
        (out / "ec.sig.der").write_bytes(encode_ecdsa_signature(ec_sig))

        # AES-256 session key: CBC-PAD round trip.
        aes = session.generate_key(KeyType.AES, 256, label="py-aes")
        iv = bytes(range(16))
        plain = b"sixteen byte blocks, and then some"
        crypted = aes.encrypt(plain, mechanism_param=iv)
        say("aes ciphertext bytes", len(crypted))
        say("aes round trip", aes.decrypt(crypted, mechanism_param=iv) == plain)

        # What a search finds, by class and label (handles and order are the module's).
        found = sorted(f"{o.object_class.name}:{o.label}" for o in session.get_objects({Attribute.TOKEN: True}))
        say("token objects", ",".join(found))
        say("private keys", len(list(session.get_objects({Attribute.CLASS: ObjectClass.PRIVATE_KEY}))))

    # A new session without login sees only public objects (CKA_PRIVATE).
    with token.open() as session:
        public = sorted(f"{o.object_class.name}:{o.label}" for o in session.get_objects())
        say("objects without login", ",".join(public))

    try:
        token.open(user_pin="9999")
        say("wrong pin", "accepted")
    except pkcs11.exceptions.PinIncorrect:
        say("wrong pin", "PinIncorrect")


if __name__ == "__main__":
    main()
