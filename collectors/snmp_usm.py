"""SNMPv3 USM: configuration names of authentication and privacy protocols -> pysnmp."""

from __future__ import annotations

from pysnmp.hlapi.v3arch.asyncio import (
    USM_AUTH_HMAC96_MD5,
    USM_AUTH_HMAC96_SHA,
    USM_AUTH_HMAC128_SHA224,
    USM_AUTH_HMAC192_SHA256,
    USM_AUTH_HMAC256_SHA384,
    USM_AUTH_HMAC384_SHA512,
    USM_AUTH_NONE,
    USM_PRIV_CBC56_DES,
    USM_PRIV_CFB128_AES,
    USM_PRIV_CFB192_AES,
    USM_PRIV_CFB192_AES_BLUMENTHAL,
    USM_PRIV_CFB256_AES,
    USM_PRIV_CFB256_AES_BLUMENTHAL,
    USM_PRIV_NONE,
    UsmUserData,
)

AUTH = {
    "md5": USM_AUTH_HMAC96_MD5, "sha": USM_AUTH_HMAC96_SHA, "sha224": USM_AUTH_HMAC128_SHA224,
    "sha256": USM_AUTH_HMAC192_SHA256, "sha384": USM_AUTH_HMAC256_SHA384,
    "sha512": USM_AUTH_HMAC384_SHA512,
}
# AES-192/256 keys are extended two ways: Blumenthal's draft (net-snmp, most agents) and
# Reeder's (Cisco, "AES256C"). The plain names follow net-snmp; the "c" ones Cisco.
PRIV = {
    "des": USM_PRIV_CBC56_DES, "aes": USM_PRIV_CFB128_AES, "aes128": USM_PRIV_CFB128_AES,
    "aes192": USM_PRIV_CFB192_AES_BLUMENTHAL, "aes256": USM_PRIV_CFB256_AES_BLUMENTHAL,
    "aes192c": USM_PRIV_CFB192_AES, "aes256c": USM_PRIV_CFB256_AES,
}


def usm_user(user: str, auth_protocol: str | None, auth_key: str | None,
             priv_protocol: str | None, priv_key: str | None) -> UsmUserData:
    """noAuthNoPriv, authNoPriv or authPriv, from the names a configuration uses."""
    return UsmUserData(
        user, authKey=auth_key or None, privKey=priv_key or None,
        authProtocol=AUTH[auth_protocol] if auth_protocol else USM_AUTH_NONE,
        privProtocol=PRIV[priv_protocol] if priv_protocol else USM_PRIV_NONE)
