resource vault 'Microsoft.KeyVault/vaults@2023-07-01' = {
  name: 'kv-example'
  location: 'northeurope'
  properties: {
    tenantId: subscription().tenantId
    sku: {
      family: 'A'
      name: 'standard'
    }
    enableRbacAuthorization: true
    enablePurgeProtection: false
  }
}
