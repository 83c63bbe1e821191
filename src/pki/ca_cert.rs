//! Reading a loaded CA certificate back into what issuing needs: its
//! subject, key usages and key identifier.

use super::*;

/// Rebuilds the CA's subject for use as the issuer name of new certificates.
///
/// Each attribute keeps its ASN.1 string type, so the issuer name of issued
/// certificates is byte-for-byte the CA's subject, as path building requires.
pub(super) fn distinguished_name(
    x509: &X509Certificate<'_>,
) -> Result<DistinguishedName, PkiError> {
    let unusable = |reason: &str| PkiError::UnusableCaCertificate {
        reason: reason.to_owned(),
    };
    let mut dn = DistinguishedName::new();
    for rdn in x509.subject().iter() {
        let mut attrs = rdn.iter();
        let (Some(attr), None) = (attrs.next(), attrs.next()) else {
            return Err(unusable(
                "its subject has a multi-valued or empty RDN, which is not supported",
            ));
        };
        let oid: Vec<u64> = attr
            .attr_type()
            .iter()
            .ok_or_else(|| unusable("its subject has an attribute type that is not a valid OID"))?
            .collect();
        let value = attr.attr_value();
        let text = std::str::from_utf8(value.data)
            .map_err(|_| unusable("its subject has a string attribute that is not valid text"));
        let dn_value = match value.header.tag() {
            Tag::Utf8String => DnValue::Utf8String(text?.to_owned()),
            Tag::PrintableString => DnValue::PrintableString(
                PrintableString::try_from(text?)
                    .map_err(|_| unusable("its subject has an invalid PrintableString"))?,
            ),
            Tag::Ia5String => DnValue::Ia5String(
                Ia5String::try_from(text?)
                    .map_err(|_| unusable("its subject has an invalid IA5String"))?,
            ),
            _ => {
                return Err(unusable(
                    "its subject uses a string type other than UTF8String, PrintableString or IA5String",
                ));
            }
        };
        dn.push(DnType::from_oid(&oid), dn_value);
    }
    Ok(dn)
}

/// Checks that the certificate may act as a CA and returns its key usages.
pub(super) fn ca_key_usages(x509: &X509Certificate<'_>) -> Result<Vec<KeyUsagePurpose>, PkiError> {
    let unusable = |reason: String| PkiError::UnusableCaCertificate { reason };
    let parse_error =
        |e: x509_parser::error::X509Error| unusable(format!("its extensions are malformed: {e}"));
    let is_ca = x509
        .basic_constraints()
        .map_err(parse_error)?
        .is_some_and(|bc| bc.value.ca);
    if !is_ca {
        return Err(unusable(
            "it is not a CA certificate (basicConstraints CA:true is missing); give the CA's certificate, not a leaf".to_owned(),
        ));
    }
    let Some(ku) = x509.key_usage().map_err(parse_error)? else {
        return Ok(Vec::new());
    };
    let ku = ku.value;
    if !ku.key_cert_sign() {
        return Err(unusable(
            "its key usage does not include keyCertSign".to_owned(),
        ));
    }
    let table = [
        (ku.digital_signature(), KeyUsagePurpose::DigitalSignature),
        (ku.non_repudiation(), KeyUsagePurpose::ContentCommitment),
        (ku.key_encipherment(), KeyUsagePurpose::KeyEncipherment),
        (ku.data_encipherment(), KeyUsagePurpose::DataEncipherment),
        (ku.key_agreement(), KeyUsagePurpose::KeyAgreement),
        (ku.key_cert_sign(), KeyUsagePurpose::KeyCertSign),
        (ku.crl_sign(), KeyUsagePurpose::CrlSign),
        (ku.encipher_only(), KeyUsagePurpose::EncipherOnly),
        (ku.decipher_only(), KeyUsagePurpose::DecipherOnly),
    ];
    Ok(table
        .into_iter()
        .filter_map(|(set, purpose)| set.then_some(purpose))
        .collect())
}

/// The CA's subject key identifier, reused as the authority key identifier
/// of issued certificates; falls back to rcgen's SHA-256 method if absent.
pub(super) fn subject_key_identifier(x509: &X509Certificate<'_>) -> KeyIdMethod {
    x509.iter_extensions()
        .find_map(|ext| match ext.parsed_extension() {
            ParsedExtension::SubjectKeyIdentifier(id) => {
                Some(KeyIdMethod::PreSpecified(id.0.to_vec()))
            }
            _ => None,
        })
        .unwrap_or(KeyIdMethod::Sha256)
}
