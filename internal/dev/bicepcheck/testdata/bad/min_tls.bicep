resource account 'Microsoft.Storage/storageAccounts@2023-05-01' = {
  name: 'stexample'
  location: 'northeurope'
  kind: 'StorageV2'
  sku: {
    name: 'Standard_RAGZRS'
  }
  properties: {
    allowSharedKeyAccess: false
    minimumTlsVersion: 'TLS1_0'
  }
}
