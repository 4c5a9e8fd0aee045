"""WSDL 1.1 descriptions of Carnet's SOAP services (SOAP 1.2, document/literal): the XDS.b registry
and repository, and the DMP's TD0.2 (existence test) and TD0.3 (setAuthorization).

Written for Carnet: the message elements keep the IHE/OASIS/HL7/DMP names and namespaces, so
standard clients (zeep, CXF, .NET) bind to them, while ebRIM registry objects and HL7v3 message
contents are typed as lax ``xs:any`` — the server validates them itself and returns precise error
codes, which a schema fault could not. The two XDS WSDLs share one type section.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from xml.sax.saxutils import quoteattr

from carnet.xds import vocabulary as v

_TYPES = f"""
<xs:schema targetNamespace="{v.RIM}" xmlns:rim="{v.RIM}" elementFormDefault="qualified">
  <xs:complexType name="ValueListType"><xs:sequence>
    <xs:element name="Value" type="xs:string" minOccurs="0" maxOccurs="unbounded"/>
  </xs:sequence></xs:complexType>
  <xs:complexType name="SlotType"><xs:sequence>
    <xs:element name="ValueList" type="rim:ValueListType"/></xs:sequence>
    <xs:attribute name="name" type="xs:string" use="required"/>
    <xs:attribute name="slotType" type="xs:string"/></xs:complexType>
  <xs:complexType name="AdhocQueryType"><xs:sequence>
    <xs:element name="Slot" type="rim:SlotType" minOccurs="0" maxOccurs="unbounded"/></xs:sequence>
    <xs:attribute name="id" type="xs:anyURI" use="required"/>
    <xs:attribute name="home" type="xs:anyURI"/></xs:complexType>
  <xs:element name="AdhocQuery" type="rim:AdhocQueryType"/>
  <xs:complexType name="RegistryObjectListType"><xs:sequence>
    <xs:any namespace="##targetNamespace" processContents="lax" minOccurs="0" maxOccurs="unbounded"/>
  </xs:sequence></xs:complexType>
  <xs:element name="RegistryObjectList" type="rim:RegistryObjectListType"/>
  <xs:complexType name="ObjectRefType"><xs:attribute name="id" type="xs:anyURI" use="required"/>
    <xs:attribute name="home" type="xs:anyURI"/></xs:complexType>
  <xs:complexType name="ObjectRefListType"><xs:sequence>
    <xs:element name="ObjectRef" type="rim:ObjectRefType" minOccurs="0" maxOccurs="unbounded"/>
  </xs:sequence></xs:complexType>
  <xs:element name="ObjectRefList" type="rim:ObjectRefListType"/>
</xs:schema>
<xs:schema targetNamespace="{v.RS}" xmlns:rs="{v.RS}" elementFormDefault="qualified">
  <xs:complexType name="RegistryErrorType">
    <xs:attribute name="codeContext" type="xs:string" use="required"/>
    <xs:attribute name="errorCode" type="xs:string" use="required"/>
    <xs:attribute name="severity" type="xs:string"/>
    <xs:attribute name="location" type="xs:string"/></xs:complexType>
  <xs:complexType name="RegistryErrorListType"><xs:sequence>
    <xs:element name="RegistryError" type="rs:RegistryErrorType" maxOccurs="unbounded"/></xs:sequence>
    <xs:attribute name="highestSeverity" type="xs:string"/></xs:complexType>
  <xs:complexType name="RegistryResponseType"><xs:sequence>
    <xs:element name="RegistryErrorList" type="rs:RegistryErrorListType" minOccurs="0"/></xs:sequence>
    <xs:attribute name="status" type="xs:anyURI" use="required"/>
    <xs:attribute name="requestId" type="xs:anyURI"/></xs:complexType>
  <xs:element name="RegistryResponse" type="rs:RegistryResponseType"/>
  <xs:element name="RegistryErrorList" type="rs:RegistryErrorListType"/>
</xs:schema>
<xs:schema targetNamespace="{v.LCM}" xmlns:rim="{v.RIM}" elementFormDefault="qualified">
  <xs:import namespace="{v.RIM}"/>
  <xs:element name="SubmitObjectsRequest"><xs:complexType><xs:sequence>
    <xs:element ref="rim:RegistryObjectList"/></xs:sequence></xs:complexType></xs:element>
  <xs:element name="RemoveObjectsRequest"><xs:complexType><xs:sequence>
    <xs:element ref="rim:ObjectRefList"/></xs:sequence></xs:complexType></xs:element>
</xs:schema>
<xs:schema targetNamespace="{v.QUERY}" xmlns:query="{v.QUERY}" xmlns:rim="{v.RIM}" xmlns:rs="{v.RS}"
    elementFormDefault="qualified">
  <xs:import namespace="{v.RIM}"/><xs:import namespace="{v.RS}"/>
  <xs:complexType name="ResponseOptionType">
    <xs:attribute name="returnType" type="xs:string" default="LeafClass"/>
    <xs:attribute name="returnComposedObjects" type="xs:boolean" default="false"/></xs:complexType>
  <xs:element name="AdhocQueryRequest"><xs:complexType><xs:sequence>
    <xs:element name="ResponseOption" type="query:ResponseOptionType"/>
    <xs:element ref="rim:AdhocQuery"/></xs:sequence></xs:complexType></xs:element>
  <xs:element name="AdhocQueryResponse"><xs:complexType><xs:sequence>
    <xs:element ref="rs:RegistryErrorList" minOccurs="0"/>
    <xs:element ref="rim:RegistryObjectList"/></xs:sequence>
    <xs:attribute name="status" type="xs:anyURI" use="required"/></xs:complexType></xs:element>
</xs:schema>
<xs:schema targetNamespace="{v.XDSB}" xmlns:xdsb="{v.XDSB}" xmlns:lcm="{v.LCM}" xmlns:rs="{v.RS}"
    elementFormDefault="qualified">
  <xs:import namespace="{v.LCM}"/><xs:import namespace="{v.RS}"/>
  <xs:element name="ProvideAndRegisterDocumentSetRequest"><xs:complexType><xs:sequence>
    <xs:element ref="lcm:SubmitObjectsRequest"/>
    <xs:element name="Document" minOccurs="0" maxOccurs="unbounded"><xs:complexType><xs:simpleContent>
      <xs:extension base="xs:base64Binary"><xs:attribute name="id" type="xs:anyURI" use="required"/>
      </xs:extension></xs:simpleContent></xs:complexType></xs:element>
  </xs:sequence></xs:complexType></xs:element>
  <xs:complexType name="DocumentRequestType"><xs:sequence>
    <xs:element name="HomeCommunityId" type="xs:anyURI" minOccurs="0"/>
    <xs:element name="RepositoryUniqueId" type="xs:string"/>
    <xs:element name="DocumentUniqueId" type="xs:string"/></xs:sequence></xs:complexType>
  <xs:complexType name="RetrieveDocumentSetRequestType"><xs:sequence>
    <xs:element name="DocumentRequest" type="xdsb:DocumentRequestType" maxOccurs="unbounded"/>
  </xs:sequence></xs:complexType>
  <xs:element name="RetrieveDocumentSetRequest" type="xdsb:RetrieveDocumentSetRequestType"/>
  <xs:element name="RetrieveDocumentSetResponse"><xs:complexType><xs:sequence>
    <xs:element ref="rs:RegistryResponse"/>
    <xs:element name="DocumentResponse" minOccurs="0" maxOccurs="unbounded"><xs:complexType><xs:sequence>
      <xs:element name="HomeCommunityId" type="xs:anyURI" minOccurs="0"/>
      <xs:element name="RepositoryUniqueId" type="xs:string"/>
      <xs:element name="DocumentUniqueId" type="xs:string"/>
      <xs:element name="NewRepositoryUniqueId" type="xs:string" minOccurs="0"/>
      <xs:element name="NewDocumentUniqueId" type="xs:string" minOccurs="0"/>
      <xs:element name="mimeType" type="xs:string"/>
      <xs:element name="Document" type="xs:base64Binary"/>
    </xs:sequence></xs:complexType></xs:element>
  </xs:sequence></xs:complexType></xs:element>
</xs:schema>
<xs:schema targetNamespace="{v.RMD}" xmlns:xdsb="{v.XDSB}" elementFormDefault="qualified">
  <xs:import namespace="{v.XDSB}"/>
  <xs:element name="RemoveDocumentsRequest" type="xdsb:RetrieveDocumentSetRequestType"/>
</xs:schema>
"""

# (operation name, SOAP action, request element, response element)
Operations = list[tuple[str, str, str, str]]

_XDS_NAMESPACES = {
    "xdsb": v.XDSB,
    "rim": v.RIM,
    "rs": v.RS,
    "lcm": v.LCM,
    "query": v.QUERY,
    "rmd": v.RMD,
}


@dataclass(frozen=True)
class Description:
    """One service's WSDL: its operations, the schemas of their messages and the prefixes used."""

    operations: Operations
    target_namespace: str = v.XDSB
    types: str = _TYPES
    namespaces: dict[str, str] = field(default_factory=lambda: dict(_XDS_NAMESPACES))
    # Output WS-Addressing actions that are not "<input action>Response" (HL7v3 names the answer).
    response_actions: dict[str, str] = field(default_factory=dict)


REGISTRY = Description(
    [
        ("RegistryStoredQuery", v.ACTION_ITI18, "query:AdhocQueryRequest", "query:AdhocQueryResponse"),
        ("RegisterDocumentSet-b", v.ACTION_ITI42, "lcm:SubmitObjectsRequest", "rs:RegistryResponse"),
        ("UpdateDocumentSet", v.ACTION_ITI57, "lcm:SubmitObjectsRequest", "rs:RegistryResponse"),
        ("DeleteDocumentSet", v.ACTION_ITI62, "lcm:RemoveObjectsRequest", "rs:RegistryResponse"),
    ]
)
REPOSITORY = Description(
    [
        (
            "ProvideAndRegisterDocumentSet-b",
            v.ACTION_ITI41,
            "xdsb:ProvideAndRegisterDocumentSetRequest",
            "rs:RegistryResponse",
        ),
        (
            "RetrieveDocumentSet",
            v.ACTION_ITI43,
            "xdsb:RetrieveDocumentSetRequest",
            "xdsb:RetrieveDocumentSetResponse",
        ),
        ("RemoveDocuments", v.ACTION_ITI86, "rmd:RemoveDocumentsRequest", "rs:RegistryResponse"),
    ]
)


def render(service: str, description: Description, location: str) -> str:
    messages, port_ops, binding_ops = [], [], []
    for name, action, req, resp in description.operations:
        response_action = description.response_actions.get(name, f"{action}Response")
        messages.append(
            f'<wsdl:message name="{name}_Message"><wsdl:part name="body" element="{req}"/></wsdl:message>'
            f'<wsdl:message name="{name}Response_Message">'
            f'<wsdl:part name="body" element="{resp}"/></wsdl:message>'
        )
        port_ops.append(
            f'<wsdl:operation name="{name}">'
            f'<wsdl:input message="tns:{name}_Message" wsaw:Action="{action}"/>'
            f'<wsdl:output message="tns:{name}Response_Message" wsaw:Action="{response_action}"/>'
            f"</wsdl:operation>"
        )
        binding_ops.append(
            f'<wsdl:operation name="{name}"><soap12:operation soapAction="{action}"/>'
            f'<wsdl:input><soap12:body use="literal"/></wsdl:input>'
            f'<wsdl:output><soap12:body use="literal"/></wsdl:output></wsdl:operation>'
        )
    tns = description.target_namespace
    prefixes = " ".join(f'xmlns:{prefix}="{uri}"' for prefix, uri in description.namespaces.items())
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<wsdl:definitions name="{service}" targetNamespace="{tns}" xmlns:tns="{tns}"
    xmlns:wsdl="http://schemas.xmlsoap.org/wsdl/" xmlns:soap12="http://schemas.xmlsoap.org/wsdl/soap12/"
    xmlns:wsaw="http://www.w3.org/2006/05/addressing/wsdl" xmlns:xs="http://www.w3.org/2001/XMLSchema"
    {prefixes}>
<wsdl:types>{description.types}</wsdl:types>
{"".join(messages)}
<wsdl:portType name="{service}_PortType">{"".join(port_ops)}</wsdl:portType>
<wsdl:binding name="{service}_Binding_Soap12" type="tns:{service}_PortType">
<soap12:binding style="document" transport="http://schemas.xmlsoap.org/soap/http"/>
<wsaw:UsingAddressing xmlns:wsaw="http://www.w3.org/2006/05/addressing/wsdl"/>
{"".join(binding_ops)}</wsdl:binding>
<wsdl:service name="{service}"><wsdl:port name="{service}_Port_Soap12" binding="tns:{service}_Binding_Soap12">
<soap12:address location={quoteattr(location)}/></wsdl:port></wsdl:service>
</wsdl:definitions>
"""
